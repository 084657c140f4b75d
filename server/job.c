/* A job's memory: where its images' results go, and freeing what workers
 * left in it (inspections, heat maps). */
#include "job.h"

#include <stdlib.h>
#include <string.h>

void infer_job_init(struct infer_job *job)
{
    memset(job, 0, sizeof *job);
    job->layer = -1;
    job->png_class = -1;
}

int infer_job_outputs(struct infer_job *job)
{
    const rn_model_info *info = job->model->info;
    size_t per = (size_t)info->n_classes + (size_t)info->embed_dim;
    if (job->layer >= 0) {
        int shape[3] = {0, 0, 0};
        rn_model_layer_shape(job->model->m, job->layer, job->images[0].h, job->images[0].w,
                             shape);
        job->layer_floats = (size_t)shape[0] *
                            (job->pool == RN_POOL_AVG ? 1 : (size_t)shape[1] * shape[2]);
        per = job->layer_floats;
    }
    job->outputs = malloc(sizeof(float) * per * (size_t)(job->n > 0 ? job->n : 1));
    if (!job->outputs)
        return -1;
    for (int i = 0; i < job->n; i++) {
        struct infer_image *it = &job->images[i];
        if (job->layer >= 0) {
            it->layer_out = job->outputs + per * (size_t)i;
            continue;
        }
        it->logits = job->outputs + per * (size_t)i;
        it->embed = it->logits + info->n_classes;
    }
    return 0;
}

void infer_job_free(struct infer_job *job)
{
    for (int i = 0; job->images && i < job->n; i++) {
        rn_inspection_free(job->images[i].inspection);
        free(job->images[i].png);
    }
    free(job->images);
    free(job->outputs);
    job->images = NULL;
    job->outputs = NULL;
    job->n = 0;
}
