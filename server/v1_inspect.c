/* POST /v1/inspect: what each residual block does for one image (norms,
 * cosines, lesions, class activation maps), as JSON or as a PNG heat map.
 * The image arrives as on /v1/classify (v1.c). */
#include "v1.h"

#include <stdlib.h>
#include <string.h>

#include "routes.h"

/* ?lesions=0|1&format=json|png&class=K */
static void parse_inspect(struct request *r, struct v1_state *st)
{
    struct infer_job *job = &st->job;
    const char *les = request_arg(r, "lesions"), *fmt = request_arg(r, "format");
    const char *cls = request_arg(r, "class");
    job->inspect = 1;
    job->lesions = 1;
    if (les && (!strcmp(les, "0") || !strcmp(les, "false")))
        job->lesions = 0;
    else if (les && strcmp(les, "1") && strcmp(les, "true")) {
        reply_error(r, SRV_ERR_BAD_REQUEST, "lesions=%.40s: expected 0, 1, true or false", les);
        return;
    }
    int png = fmt && !strcmp(fmt, "png");
    if (fmt && !png && strcmp(fmt, "json")) {
        reply_error(r, SRV_ERR_BAD_REQUEST, "format=%.40s: expected json or png", fmt);
        return;
    }
    job->png_class = png ? -2 : -1;
    if (!cls)
        return;
    int k, nc = st->model->info->n_classes;
    if (!png) {
        reply_error(r, SRV_ERR_BAD_REQUEST,
                    "class=%.40s: only for format=png (the JSON has the maps of the top-k classes)",
                    cls);
        return;
    }
    /* class 0 is valid: routes_parse_topk takes 1.. */
    if (!strcmp(cls, "0"))
        k = 0;
    else if (routes_parse_topk(cls, &k) < 0 || k >= nc) {
        reply_error(r, SRV_ERR_BAD_REQUEST, "class=%.40s: model %s has classes 0..%d", cls,
                    st->model->name, nc - 1);
        return;
    }
    job->png_class = k;
}

void v1_inspect_begin(struct request *r)
{
    struct v1_state *st = v1_begin(r);
    if (st)
        parse_inspect(r, st);
}

void v1_inspect_end(struct request *r)
{
    if (request_multipart(r) && request_n_uploads(r) > 1) {
        reply_error(r, SRV_ERR_BAD_REQUEST,
                    "%d file parts: an inspection takes one image (send one per request)",
                    request_n_uploads(r));
        return;
    }
    v1_images_end(r);
}

void v1_inspect_finish(struct request *r)
{
    struct v1_state *st = request_state(r);
    if (v1_reply_failure(r, st))
        return;
    struct infer_image *it = &st->job.images[0];
    if (it->png) {
        void *png = it->png;
        it->png = NULL; /* the response frees it */
        reply_buffer(r, 200, "image/png", png, it->png_len, NULL, NULL);
        return;
    }
    char *s = rn_inspection_json(st->model->m, it->inspection, st->topk, st->topk);
    /* {"model":..., ["name":...,] "input_shape":[...], then the inspection's fields} */
    cJSON *head = cJSON_CreateObject();
    cJSON_AddStringToObject(head, "model", st->model->name);
    if (request_multipart(r))
        cJSON_AddStringToObject(head, "name", request_upload(r, 0)->name);
    int shape[3] = {3, it->h, it->w};
    cJSON_AddItemToObject(head, "input_shape", cJSON_CreateIntArray(shape, 3));
    char *h = cJSON_PrintUnformatted(head);
    cJSON_Delete(head);
    size_t hn = h ? strlen(h) : 0, sn = s ? strlen(s) : 0;
    char *body = h && s && hn >= 2 && sn >= 2 ? malloc(hn + sn + 2) : NULL;
    if (!body) {
        free(h);
        free(s);
        reply_error(r, SRV_ERR_NOMEM, "out of memory building the reply");
        return;
    }
    memcpy(body, h, hn - 1); /* without its closing brace */
    body[hn - 1] = ',';
    memcpy(body + hn, s + 1, sn - 1); /* without the opening one */
    body[hn + sn - 1] = '\n';
    body[hn + sn] = '\0';
    free(h);
    free(s);
    reply_buffer(r, 200, "application/json", body, hn + sn, NULL, NULL);
}
