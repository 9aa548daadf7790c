/*
 * hello.h -- the example plugin's op (hello.c), for its generated binding.
 */
#ifndef USAGI_HELLO_H
#define USAGI_HELLO_H

#include "usagi/core.h"

/* *y = a x, recorded for autograd when x requires grad. */
usg_status hello_scale(usg_tensor **y, usg_tensor *x, double a);

#endif
