#!/bin/sh
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Doxygen input filter for include/zeropool.h (docs/Doxyfile): the header is
# documented with plain C comments, which Doxygen ignores. This turns them
# into Doxygen comments on the fly, without touching the file:
#   line 1 (SPDX)                  -> blank (same line numbers)
#   line 2 "/*" (the file comment) -> "/** @file"
#   "/* text" at the start of a line, before a declaration -> "/** text"
#   "; /* text", ", /* text" or "= 2 /* text" after a member or an
#   enumerator                                           -> "/**< text"
exec sed \
  -e '1{/SPDX-License-Identifier/s/.*//;}' \
  -e '2s|^/\*$|/** @file|' \
  -e 's|^\([[:space:]]*\)/\* |\1/** |' \
  -e 's|\([;,]\)\([[:space:]]*\)/\* |\1\2/**< |' \
  -e 's|\(= [0-9][0-9]*\)\([[:space:]]*\)/\* |\1\2/**< |' \
  "$1"
