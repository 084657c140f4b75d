/* The documents served by GET. The inspection page (server/ui/): HTML, CSS
 * and JavaScript compiled into the binary with the assembler's .incbin, as
 * server/openapi.c does, so the daemon needs no files at run time and loads
 * nothing from elsewhere (the Makefile makes this object depend on them).
 * Then the OpenAPI description and the metrics page. */
#include "page.h"

#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "openapi.h"

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

extern const char ui_index_html[], ui_index_html_end[], ui_app_js[], ui_app_js_end[],
    ui_style_css[], ui_style_css_end[], ui_icon_svg[], ui_icon_svg_end[];

static const struct {
    const char *path, *type;
    const char *start, *end;
} assets[] = {
    {"/", "text/html; charset=utf-8", ui_index_html, ui_index_html_end},
    {"/ui/app.js", "text/javascript; charset=utf-8", ui_app_js, ui_app_js_end},
    {"/ui/style.css", "text/css; charset=utf-8", ui_style_css, ui_style_css_end},
    {"/ui/icon.svg", "image/svg+xml", ui_icon_svg, ui_icon_svg_end},
};

/* Everything the page loads is its own (Content-Security-Policy 'self');
 * images it shows are the user's photo and the heat maps, as blob: URLs. */
void page_asset(struct request *r)
{
    size_t i = 0, n = sizeof assets / sizeof assets[0];
    while (i < n && strcmp(assets[i].path, request_path(r)))
        i++;
    if (i == n) {
        reply_error(r, SRV_ERR_NOT_FOUND, "no route %.200s", request_path(r));
        return;
    }
    size_t len = (size_t)(assets[i].end - assets[i].start);
    char *body = malloc(len ? len : 1);
    if (!body) {
        reply_error(r, SRV_ERR_NOMEM, "out of memory");
        return;
    }
    memcpy(body, assets[i].start, len);
    reply_buffer(r, 200, assets[i].type, body, len, "Content-Security-Policy",
                 "default-src 'self'; img-src 'self' blob:; style-src 'self'; script-src 'self'; "
                 "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    reply_header(r, "X-Content-Type-Options", "nosniff");
    reply_header(r, "Cache-Control", "no-cache");
}

void openapi_page(struct request *r)
{
    size_t len = (size_t)(openapi_json_end - openapi_json);
    char *page = malloc(len);
    if (!page) {
        reply_error(r, SRV_ERR_NOMEM, "out of memory");
        return;
    }
    memcpy(page, openapi_json, len);
    reply_buffer(r, 200, "application/json", page, len, NULL, NULL);
}

void metrics_page(struct request *r)
{
    size_t len;
    char *page = metrics_render(&len);
    if (!page) {
        reply_error(r, SRV_ERR_NOMEM, "out of memory rendering metrics");
        return;
    }
    reply_buffer(r, 200, "text/plain; version=0.0.4; charset=utf-8", page, len, NULL, NULL);
}
