/* The inspection page served at GET / (server/ui/): HTML, CSS and
 * JavaScript compiled into the binary with the assembler's .incbin, as
 * server/openapi.c does, so the daemon needs no files at run time and loads
 * nothing from elsewhere. The Makefile makes this object depend on them. */
#include "page.h"

#define ASSET(sym, path)                                                                 \
    __asm__(".pushsection .rodata\n"                                                     \
            ".balign 16\n"                                                               \
            ".globl " #sym "\n"                                                          \
            ".hidden " #sym "\n" #sym ":\n"                                              \
            ".incbin \"" path "\"\n"                                                     \
            ".globl " #sym "_end\n"                                                      \
            ".hidden " #sym "_end\n" #sym "_end:\n"                                      \
            ".byte 0\n"                                                                  \
            ".popsection\n")

ASSET(ui_index_html, "server/ui/index.html");
ASSET(ui_app_js, "server/ui/app.js");
ASSET(ui_style_css, "server/ui/style.css");
ASSET(ui_icon_svg, "server/ui/icon.svg");

const struct page_asset page_assets[] = {
    {"/", "text/html; charset=utf-8", ui_index_html, ui_index_html_end},
    {"/ui/app.js", "text/javascript; charset=utf-8", ui_app_js, ui_app_js_end},
    {"/ui/style.css", "text/css; charset=utf-8", ui_style_css, ui_style_css_end},
    {"/ui/icon.svg", "image/svg+xml", ui_icon_svg, ui_icon_svg_end},
    {0, 0, 0, 0},
};
