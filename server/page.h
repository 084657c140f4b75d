/* The static files of the inspection page (server/ui/), compiled in. */
#ifndef RESNETD_PAGE_H
#define RESNETD_PAGE_H

extern const char ui_index_html[], ui_index_html_end[], ui_app_js[], ui_app_js_end[],
    ui_style_css[], ui_style_css_end[], ui_icon_svg[], ui_icon_svg_end[];

struct page_asset {
    const char *path, *type;
    const char *start, *end;
};

/* Every asset by its URL path; the last entry's path is NULL. */
extern const struct page_asset page_assets[];

#endif
