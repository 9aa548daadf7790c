/*
 * w2v_lua.h -- what the word2vec plugin's hand-written binding
 * (word2vec_lua.c) and the one generated from ops.lua share: the check of a
 * vocabulary argument, and the function that registers the generated ops.
 * Not installed.
 */
#ifndef USAGI_W2V_LUA_H
#define USAGI_W2V_LUA_H

#include "usagi/lua.h"
#include "word2vec.h"

#define USG_W2V_VOCAB_MT "usagi.word2vec.Vocab"

/* The vocabulary at idx, or an error naming the function and the argument. */
usg_w2v_vocab *usg_w2v_lua_checkvocab(lua_State *L, int idx);
/* Generated from ops.lua: the ops into the module table at `module` and
 * the Vocab metatable, their declarations into usagi.op_table(). */
int usg_word2vec_ops_open(lua_State *L, int module);

#endif
