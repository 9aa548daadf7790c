# Configure, build and run the whole suite under ASan + UBSan in its own tree.
# Called by ctest as: cmake -DSRC=<source> -DBIN=<tree> -P sanitize.cmake
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "sanitizer pass failed at: ${ARGN}")
  endif()
endfunction()
run(${CMAKE_COMMAND} -S ${SRC} -B ${BIN} -DCMAKE_BUILD_TYPE=Debug -DUSAGI_SANITIZE=ON)
run(${CMAKE_COMMAND} --build ${BIN} -j2)
# detect_leaks: LeakSanitizer fails the run on any leak; OpenBLAS's thread
# pool is process-lifetime and not a leak of ours.
set(ENV{ASAN_OPTIONS} "detect_leaks=1:abort_on_error=0")
set(ENV{UBSAN_OPTIONS} "print_stacktrace=1:halt_on_error=1")
run(ctest --test-dir ${BIN} --output-on-failure -j2)
