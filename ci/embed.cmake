# SPDX-License-Identifier: Apache-2.0
# Turns a text file into a C source defining `const char SYM[]` (NUL-terminated)
# and `const size_t SYM_len`. Usage: cmake -DIN=.. -DOUT=.. -DSYM=.. -P embed.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE "${OUT}" "/* Generated from ${IN}; do not edit. */\n#include <stddef.h>\nconst char ${SYM}[] = {${body}0x00};\nconst size_t ${SYM}_len = ${len};\n")
