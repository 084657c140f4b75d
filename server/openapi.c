/* The OpenAPI 3 description of every route (server/openapi.json, kept by
 * hand beside the routes it describes), compiled into the binary as bytes:
 * the assembler's .incbin reads the file (the path is from the top of the
 * tree, where make runs; the Makefile makes this object depend on it). */
#include "openapi.h"

__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        ".globl openapi_json\n"
        ".hidden openapi_json\n"
        "openapi_json:\n"
        ".incbin \"server/openapi.json\"\n"
        ".globl openapi_json_end\n"
        ".hidden openapi_json_end\n"
        "openapi_json_end:\n"
        ".byte 0\n"
        ".popsection\n");
