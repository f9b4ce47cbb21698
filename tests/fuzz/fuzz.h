/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* The fuzz target's entry point, shared by the libFuzzer build (fuzz_api)
 * and the corpus replayer (regress_main.c, ctest fuzz_regress). */
#ifndef ZP_FUZZ_H
#define ZP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Runs the program encoded by data[0, size) against every pool it creates
 * and a shadow model; aborts with a "fuzz_api:" line on stderr when the
 * library disagrees with the model. Frees everything before returning. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* ZP_FUZZ_H */
