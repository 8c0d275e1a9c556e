/*
 * gan/parzen.c — Parzen-window log-likelihood (see parzen.h for the maths,
 * the accuracy and the ownership rules).
 *
 * One context holds the samples on the backend (centred, uploaded once) and
 * the per-block buffers; a scoring pass walks the images in blocks, gets the
 * block's −2·x·sᵀ from one sgemm, and turns each row into log p for every σ
 * asked for, so choosing σ costs one sgemm pass, not one per grid value.
 */
#include "gan/parzen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

enum {
    PARZEN_BLOCK_ROWS = 256,             /* images per sgemm */
    PARZEN_BLOCK_ELEMS = 4 * 1024 * 1024 /* cap on block × m distances (16 MB) */
};

void gan_parzen_paper_sigmas(double sigmas[GAN_PARZEN_PAPER_SIGMAS])
{
    for (int k = 0; k < GAN_PARZEN_PAPER_SIGMAS; k++)
        sigmas[k] = pow(10.0, -1.0 + (double)k / 9.0);
}

typedef struct parzen_ctx {
    gk_backend *be;
    int m, d, block;
    double *centre; /* d: the samples' mean, subtracted from everything */
    double *s_norm; /* m: ‖s_j − centre‖² of the uploaded floats */
    double *x_norm; /* block */
    double *row;    /* m: one image's squared distances */
    float *stage;   /* block × d: centred rows on their way up */
    float *dist;    /* block × m: −2·x·sᵀ on its way down */
    float *s_dev, *x_dev, *dist_dev;
} parzen_ctx;

#define PARZEN_EXP_CUTOFF 50.0 /* exp(-50) ≈ 2e-22 */

static int backend_check(gk_backend *be, const char *what, gan_error *err)
{
    const char *msg = gk_backend_error(be);
    if (!msg)
        return 0;
    return gan_fail(err, "backend", "Parzen estimate failed %s on the %s backend: %s", what,
                    be->ops->name, msg);
}

static int check_set(const float *a, int rows, const char *name, const char *rows_name,
                     gan_error *err)
{
    if (rows < 1)
        return gan_fail(err, rows_name, "%s (rows of %s) must be at least 1, got %d", rows_name,
                        name, rows);
    if (!a)
        return gan_fail(err, name, "%s must not be NULL", name);
    return 0;
}

static int check_sigma(double s, const char *field, int index, gan_error *err)
{
    if (isfinite(s) && s > 0)
        return 0;
    if (index < 0)
        return gan_fail(err, field, "%s must be a finite number > 0, got %g", field, s);
    return gan_fail(err, field, "%s[%d] must be a finite number > 0, got %g", field, index, s);
}

/* Centre rows [r0, r0+rows) of a into ctx->stage and their squared norms into norm. */
static int stage_rows(parzen_ctx *c, const float *a, int r0, int rows, double *norm,
                      const char *name, gan_error *err)
{
    const int d = c->d;
    for (int r = 0; r < rows; r++) {
        const float *src = a + (size_t)(r0 + r) * (size_t)d;
        float *dst = c->stage + (size_t)r * (size_t)d;
        double acc = 0;
        for (int k = 0; k < d; k++) {
            if (!isfinite(src[k]))
                return gan_fail(err, name,
                                "%s row %d, column %d is not finite (%g); NaN or infinite "
                                "pixels cannot be scored",
                                name, r0 + r, k, (double)src[k]);
            float v = (float)((double)src[k] - c->centre[k]);
            dst[k] = v;
            acc += (double)v * (double)v;
        }
        norm[r] = acc;
    }
    return 0;
}

static void ctx_close(parzen_ctx *c)
{
    gk_backend *be = c->be;
    if (be) {
        if (c->s_dev)
            be->ops->free(be, c->s_dev);
        if (c->x_dev)
            be->ops->free(be, c->x_dev);
        if (c->dist_dev)
            be->ops->free(be, c->dist_dev);
    }
    free(c->centre);
    free(c->s_norm);
    free(c->x_norm);
    free(c->row);
    free(c->stage);
    free(c->dist);
    memset(c, 0, sizeof *c);
}

/* Validate the samples, centre and upload them; max_rows bounds the block. */
static int ctx_open(parzen_ctx *c, gk_backend *be, const float *samples, int m, int d, int max_rows,
                    gan_error *err)
{
    memset(c, 0, sizeof *c);
    if (!be)
        return gan_fail(err, "backend", "backend must not be NULL");
    if (check_set(samples, m, "samples", "m", err) < 0)
        return -1;
    if (d < 1)
        return gan_fail(err, "d", "d (pixels per image) must be at least 1, got %d", d);
    if (backend_check(be, "before starting (the backend already holds an error)", err) < 0)
        return -1;

    c->be = be;
    c->m = m;
    c->d = d;
    int block = PARZEN_BLOCK_ROWS;
    if (block > max_rows)
        block = max_rows;
    if ((size_t)block * (size_t)m > PARZEN_BLOCK_ELEMS)
        block = (int)(PARZEN_BLOCK_ELEMS / (size_t)m);
    if (block < 1)
        block = 1;
    c->block = block;

    size_t md = (size_t)m * (size_t)d;
    c->centre = calloc((size_t)d, sizeof *c->centre);
    c->s_norm = malloc((size_t)m * sizeof *c->s_norm);
    c->x_norm = malloc((size_t)block * sizeof *c->x_norm);
    c->row = malloc((size_t)m * sizeof *c->row);
    c->stage = malloc((size_t)block * (size_t)d * sizeof *c->stage);
    c->dist = malloc((size_t)block * (size_t)m * sizeof *c->dist);
    if (!c->centre || !c->s_norm || !c->x_norm || !c->row || !c->stage || !c->dist) {
        ctx_close(c);
        return gan_fail(err, "samples",
                        "out of host memory for a Parzen estimate with %d samples of %d pixels", m,
                        d);
    }

    for (int j = 0; j < m; j++)
        for (int k = 0; k < d; k++)
            c->centre[k] += (double)samples[(size_t)j * (size_t)d + (size_t)k];
    for (int k = 0; k < d; k++)
        c->centre[k] /= m; /* a NaN here is caught, with its row, by stage_rows */

    c->s_dev = be->ops->alloc(be, md * sizeof(float));
    c->x_dev = c->s_dev ? be->ops->alloc(be, (size_t)block * (size_t)d * sizeof(float)) : NULL;
    c->dist_dev = c->x_dev ? be->ops->alloc(be, (size_t)block * (size_t)m * sizeof(float)) : NULL;
    if (backend_check(be, "allocating its buffers", err) < 0 || !c->dist_dev) {
        if (!gk_backend_error(be))
            gan_fail(err, "backend", "Parzen estimate: the %s backend returned no buffer",
                     be->ops->name);
        ctx_close(c);
        return -1;
    }

    for (int r0 = 0; r0 < m; r0 += block) {
        int rows = m - r0 < block ? m - r0 : block;
        if (stage_rows(c, samples, r0, rows, c->s_norm + r0, "samples", err) < 0) {
            ctx_close(c);
            return -1;
        }
        be->ops->upload(be, c->s_dev + (size_t)r0 * (size_t)d, c->stage,
                        (size_t)rows * (size_t)d * sizeof(float));
    }
    if (backend_check(be, "uploading the samples", err) < 0) {
        ctx_close(c);
        return -1;
    }
    return 0;
}

/*
 * Score n images x against the uploaded samples for each of ns widths:
 * mean[k] = mean log p, se[k] = std / sqrt(n) (std with divisor n).
 */
static int ctx_score(parzen_ctx *c, const float *x, int n, const char *name, const double *sigmas,
                     int ns, double *mean, double *se, gan_error *err)
{
    gk_backend *be = c->be;
    const int m = c->m, d = c->d;
    double *coef = malloc((size_t)ns * 4 * sizeof *coef);
    if (!coef)
        return gan_fail(err, name, "out of memory scoring %s for %d widths", name, ns);
    double *cst = coef + ns, *avg = cst + ns, *m2 = avg + ns;
    int rc = 0;
    for (int k = 0; k < ns; k++) {
        double s2 = sigmas[k] * sigmas[k];
        coef[k] = 1.0 / (2.0 * s2);
        cst[k] = -log((double)m) - 0.5 * (double)d * log(2.0 * M_PI * s2);
        avg[k] = 0;
        m2[k] = 0;
    }

    long seen = 0;
    /* Distances in full fp32 whatever a trainer on the same backend asked for: TF32 is
     * state of the backend (cuBLAS's math mode), and a run's precision is the run's. */
    if (be->ops->set_tf32)
        be->ops->set_tf32(be, false);
    for (int r0 = 0; r0 < n; r0 += c->block) {
        int rows = n - r0 < c->block ? n - r0 : c->block;
        rc = stage_rows(c, x, r0, rows, c->x_norm, name, err);
        if (rc < 0)
            break;
        be->ops->upload(be, c->x_dev, c->stage, (size_t)rows * (size_t)d * sizeof(float));
        /* dist = −2 · X · Sᵀ, rows × m */
        be->ops->sgemm(be, false, true, rows, m, d, -2.0f, c->x_dev, d, c->s_dev, d, 0.0f,
                       c->dist_dev, m);
        be->ops->download(be, c->dist, c->dist_dev, (size_t)rows * (size_t)m * sizeof(float));
        rc = backend_check(be, "computing distances", err);
        if (rc < 0)
            break;

        for (int r = 0; r < rows; r++) {
            const float *cross = c->dist + (size_t)r * (size_t)m;
            const double xn = c->x_norm[r];
            double dmin = INFINITY;
            for (int j = 0; j < m; j++) {
                double dj = xn + c->s_norm[j] + (double)cross[j];
                dj = dj > 0 ? dj : 0; /* rounding can take a zero distance below 0 */
                c->row[j] = dj;
                dmin = dj < dmin ? dj : dmin;
            }
            seen++;
            for (int k = 0; k < ns; k++) {
                /* max subtraction: the largest term is the nearest sample's, exp(0) = 1 */
                /* terms below e^-50 change the sum by < m·2e-22: skip their exp() */
                const double ck = coef[k], reach = dmin + PARZEN_EXP_CUTOFF / ck;
                double sum = 0;
                for (int j = 0; j < m; j++)
                    if (c->row[j] < reach)
                        sum += exp(-(c->row[j] - dmin) * ck);
                double lp = -dmin * ck + log(sum) + cst[k];
                double delta = lp - avg[k]; /* Welford */
                avg[k] += delta / (double)seen;
                m2[k] += delta * (lp - avg[k]);
            }
        }
    }
    for (int k = 0; rc == 0 && k < ns; k++) {
        mean[k] = avg[k];
        se[k] = sqrt(m2[k] / (double)n) / sqrt((double)n);
    }
    free(coef);
    return rc;
}

int gan_parzen_score(gk_backend *be, const float *samples, int m, const float *x, int n, int d,
                     double sigma, double *mean, double *std_err, gan_error *err)
{
    if (check_set(x, n, "x", "n", err) < 0 || check_sigma(sigma, "sigma", -1, err) < 0)
        return -1;
    parzen_ctx c;
    if (ctx_open(&c, be, samples, m, d, n, err) < 0)
        return -1;
    double mu, se;
    int rc = ctx_score(&c, x, n, "x", &sigma, 1, &mu, &se, err);
    ctx_close(&c);
    if (rc < 0)
        return -1;
    if (mean)
        *mean = mu;
    if (std_err)
        *std_err = se;
    return 0;
}

/* Index of the largest mean, the first on ties. */
static int best_index(const double *mean, int ns)
{
    int best = 0;
    for (int k = 1; k < ns; k++)
        if (mean[k] > mean[best])
            best = k;
    return best;
}

int gan_parzen_select_sigma(gk_backend *be, const float *samples, int m, const float *valid, int nv,
                            int d, const double *sigmas, int ns, double *best_sigma,
                            double *best_mean, gan_error *err)
{
    double paper[GAN_PARZEN_PAPER_SIGMAS];
    if (!sigmas) {
        gan_parzen_paper_sigmas(paper);
        sigmas = paper;
        ns = GAN_PARZEN_PAPER_SIGMAS;
    }
    if (ns < 1)
        return gan_fail(err, "ns", "ns (number of widths to try) must be at least 1, got %d", ns);
    for (int k = 0; k < ns; k++)
        if (check_sigma(sigmas[k], "sigmas", k, err) < 0)
            return -1;
    if (!best_sigma)
        return gan_fail(err, "best_sigma", "best_sigma must not be NULL");
    if (check_set(valid, nv, "valid", "nv", err) < 0)
        return -1;

    double *mean = malloc((size_t)ns * 2 * sizeof *mean);
    if (!mean)
        return gan_fail(err, "ns", "out of memory for %d widths", ns);
    parzen_ctx c;
    int rc = ctx_open(&c, be, samples, m, d, nv, err);
    if (rc == 0) {
        rc = ctx_score(&c, valid, nv, "valid", sigmas, ns, mean, mean + ns, err);
        ctx_close(&c);
    }
    if (rc == 0) {
        int b = best_index(mean, ns);
        *best_sigma = sigmas[b];
        if (best_mean)
            *best_mean = mean[b];
    }
    free(mean);
    return rc;
}

int gan_parzen_evaluate(gk_backend *be, const float *samples, int m, const float *valid, int nv,
                        const float *test, int nt, int d, gan_parzen_result *out, gan_error *err)
{
    if (!out)
        return gan_fail(err, "out", "out must not be NULL");
    if (check_set(valid, nv, "valid", "nv", err) < 0 || check_set(test, nt, "test", "nt", err) < 0)
        return -1;
    double sigmas[GAN_PARZEN_PAPER_SIGMAS], mean[GAN_PARZEN_PAPER_SIGMAS],
        se[GAN_PARZEN_PAPER_SIGMAS];
    gan_parzen_paper_sigmas(sigmas);

    parzen_ctx c;
    if (ctx_open(&c, be, samples, m, d, nv > nt ? nv : nt, err) < 0)
        return -1;
    int rc = ctx_score(&c, valid, nv, "valid", sigmas, GAN_PARZEN_PAPER_SIGMAS, mean, se, err);
    double sigma = 0, mu = 0, s = 0;
    if (rc == 0) { /* mean[] is only filled when the validation set scored */
        sigma = sigmas[best_index(mean, GAN_PARZEN_PAPER_SIGMAS)];
        rc = ctx_score(&c, test, nt, "test", &sigma, 1, &mu, &s, err);
    }
    ctx_close(&c);
    if (rc < 0)
        return -1;
    out->mean_ll = mu;
    out->stderr_ll = s;
    out->sigma = sigma;
    out->samples = m;
    out->images = nt;
    return 0;
}
