/*
 * gan/sample_metrics.c — Fréchet distance, k-NN precision/recall and class
 * statistics of generated samples (see sample_metrics.h for the maths, the
 * exactness and the ownership rules).
 *
 * Linear algebra is OpenBLAS's: dsyrk for covariances, dgemm/dsyrk for the
 * matrix square root, LAPACK's dsyevd (in libopenblas itself) for the
 * symmetric eigenproblems, and sgemm for all pairwise distances. Debian's
 * OpenBLAS packages ship no lapacke.h (that is liblapacke-dev, and libopenblas
 * exports no LAPACKE_ symbols), so dsyevd's Fortran prototype is declared
 * here.
 *
 * Distances are walked tile by tile: one sgemm gives −2·A_I·B_Jᵀ for a tile
 * of at most 1024 × 1024 pairs, and OpenMP threads scan its rows (top-k per
 * row for radii; ball membership both ways for precision/recall, each
 * thread marking columns in its own flags, merged after the tile). The
 * float distance only decides what it can decide safely, with a margin that
 * bounds its rounding; anything within the margin, and every radius, is
 * settled in double from the original floats. That recomputation is rare
 * (pairs within ~1e-5 relative of a radius) and makes duplicates, ties and
 * points exactly on a ball's surface come out as a double brute force says.
 */
#include "gan/sample_metrics.h"

#include "gan/json_text.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <cjson/cJSON.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/*
 * LAPACK's symmetric eigensolver, Fortran calling convention: everything by
 * reference, column-major (a symmetric matrix reads the same either way;
 * eigenvectors come back as columns, i.e. as rows of a row-major array), and
 * gfortran's hidden lengths of the two CHARACTER arguments at the end.
 */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t jobz_len, size_t uplo_len);

enum {
    MOMENT_BLOCK = 512, /* rows per dsyrk update (a 512 × d double block) */
    TILE = 1024,        /* rows and columns of one distance tile (4 MB of floats) */
    KNN_CHUNK = 64      /* columns looked at together for a nearer neighbour */
};

/*
 * The largest feature magnitude accepted: squared distances of such values
 * stay far inside float range (d·(2e15)² ≪ 3.4e38 for any realistic d).
 */
#define FEATURE_MAX 1e15

/* ---- input checks --------------------------------------------------------- */

static int check_rows(const void *a, int n, int min, const char *field, const char *what,
                      const char *n_name, gan_error *err)
{
    if (n < min)
        return gan_fail(err, n_name, "%s (rows of %s) must be at least %d, got %d", n_name, what,
                        min, n);
    if (!a)
        return gan_fail(err, field, "%s (%s) must not be NULL", field, what);
    return 0;
}

static int check_dims(int d, gan_error *err)
{
    if (d < 1)
        return gan_fail(err, "d", "d (feature dimensions) must be at least 1, got %d", d);
    return 0;
}

/* Every value finite and of moderate size; the first offender named by row and column. */
static int check_points(const float *x, int n, int d, const char *field, const char *what,
                        gan_error *err)
{
    for (size_t i = 0; i < (size_t)n; i++)
        for (size_t k = 0; k < (size_t)d; k++) {
            float v = x[i * (size_t)d + k];
            if (!(fabsf(v) <= FEATURE_MAX)) /* also catches NaN */
                return gan_fail(err, field,
                                "%s (%s) row %zu, column %zu is %g: features must be finite and "
                                "at most %g in magnitude",
                                field, what, i, k, (double)v, FEATURE_MAX);
        }
    return 0;
}

static void *alloc_array(size_t count, size_t size)
{
    return count ? calloc(count, size) : NULL;
}

/* ---- moments -------------------------------------------------------------- */

static void mean_of(const float *x, int n, int d, double *mean)
{
    for (int k = 0; k < d; k++)
        mean[k] = 0;
    for (size_t i = 0; i < (size_t)n; i++)
        for (size_t k = 0; k < (size_t)d; k++)
            mean[k] += (double)x[i * (size_t)d + k];
    for (int k = 0; k < d; k++)
        mean[k] /= n;
}

/* The moments of x, already checked. */
static int moments_of(const float *x, int n, int d, const char *field, gan_moments *out,
                      gan_error *err)
{
    memset(out, 0, sizeof *out);
    const size_t dz = (size_t)d, block = n < MOMENT_BLOCK ? (size_t)n : MOMENT_BLOCK;
    out->mean = alloc_array(dz, sizeof *out->mean);
    out->cov = alloc_array(dz * dz, sizeof *out->cov);
    double *blk = alloc_array(block * dz, sizeof *blk);
    if (!out->mean || !out->cov || !blk) {
        free(blk);
        gan_moments_free(out);
        return gan_fail(err, field, "out of memory for the moments of %d points of %d dimensions",
                        n, d);
    }
    out->n = n;
    out->d = d;
    mean_of(x, n, d, out->mean);
    /* Two passes (mean, then centred products): no cancellation of E[x²] − E[x]². */
    for (int r0 = 0; r0 < n; r0 += (int)block) {
        int rows = n - r0 < (int)block ? n - r0 : (int)block;
        for (size_t i = 0; i < (size_t)rows; i++)
            for (size_t k = 0; k < dz; k++)
                blk[i * dz + k] = (double)x[((size_t)r0 + i) * dz + k] - out->mean[k];
        /* cov(upper) += blkᵀ·blk */
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, rows, 1.0, blk, d, r0 ? 1.0 : 0.0,
                    out->cov, d);
    }
    free(blk);
    const double scale = 1.0 / (double)(n - 1);
    for (size_t i = 0; i < dz; i++)
        for (size_t j = i; j < dz; j++) {
            double v = out->cov[i * dz + j] * scale;
            out->cov[i * dz + j] = v;
            out->cov[j * dz + i] = v;
        }
    return 0;
}

int gan_moments_compute(const float *x, int n, int d, gan_moments *out, gan_error *err)
{
    if (!out)
        return gan_fail(err, "out", "out must not be NULL");
    memset(out, 0, sizeof *out);
    if (check_rows(x, n, 2, "x", "the points", "n", err) < 0 || check_dims(d, err) < 0 ||
        check_points(x, n, d, "x", "the points", err) < 0)
        return -1;
    return moments_of(x, n, d, "x", out, err);
}

void gan_moments_free(gan_moments *m)
{
    if (!m)
        return;
    free(m->mean);
    free(m->cov);
    memset(m, 0, sizeof *m);
}

/* ---- the Fréchet distance ------------------------------------------------- */

/*
 * Eigenvalues (ascending, into w) of the symmetric n × n matrix a, and with
 * vectors its eigenvectors, overwriting a (eigenvector k = row k).
 */
static int sym_eig(double *a, int n, double *w, int vectors, const char *what, gan_error *err)
{
    const char jobz = vectors ? 'V' : 'N', uplo = 'U';
    int lwork = -1, liwork = -1, info = 0, iwork_size = 0;
    double work_size = 0;
    dsyevd_(&jobz, &uplo, &n, a, &n, w, &work_size, &lwork, &iwork_size, &liwork, &info, 1, 1);
    if (info != 0)
        return gan_fail(err, "cov",
                        "LAPACK dsyevd's workspace query for %s failed (info = %d: argument %d "
                        "was refused)",
                        what, info, -info);
    lwork = (int)work_size;
    liwork = iwork_size;
    double *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) {
        free(work);
        free(iwork);
        return gan_fail(err, "cov", "out of memory for the eigendecomposition of %s (%d × %d)",
                        what, n, n);
    }
    dsyevd_(&jobz, &uplo, &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    if (info < 0)
        return gan_fail(err, "cov", "LAPACK dsyevd refused argument %d for %s (info = %d)", -info,
                        what, info);
    if (info > 0)
        return gan_fail(err, "cov",
                        "LAPACK dsyevd did not converge on %s (info = %d: %d eigenvalues failed)",
                        what, info, info);
    return 0;
}

static int check_moments(const gan_moments *m, const char *field, gan_error *err)
{
    if (!m)
        return gan_fail(err, field, "%s must not be NULL", field);
    if (m->d < 1)
        return gan_fail(err, field, "%s has %d dimensions; at least 1 is needed", field, m->d);
    if (!m->mean || !m->cov)
        return gan_fail(err, field, "%s has no mean or no covariance", field);
    size_t d = (size_t)m->d;
    for (size_t i = 0; i < d; i++)
        if (!isfinite(m->mean[i]))
            return gan_fail(err, field, "%s's mean[%zu] is not finite (%g)", field, i, m->mean[i]);
    for (size_t i = 0; i < d * d; i++)
        if (!isfinite(m->cov[i]))
            return gan_fail(err, field, "%s's covariance (%zu, %zu) is not finite (%g)", field,
                            i / d, i % d, m->cov[i]);
    return 0;
}

/*
 * Eigenvalues of a positive semi-definite matrix at or below this are rounding
 * (dsyevd's error is about d·ε·‖A‖) and count as 0. Not only the negative
 * ones: a null direction's rounding, say 1e-14·‖A‖, would otherwise add its
 * square root, 1e-7·√‖A‖, to tr √M — FD(x, x) came out at −4e-6 for 60
 * points in 128 dimensions, −4e-8 with one dead feature in 10,000. Only the
 * exact null space is lost: what lies below the floor is below what the
 * decomposition resolves anyway.
 */
static double rounding_floor(const double *w, int n)
{
    double top = 0;
    for (int k = 0; k < n; k++)
        top = fabs(w[k]) > top ? fabs(w[k]) : top;
    return (double)n * DBL_EPSILON * top;
}

int gan_frechet_distance(const gan_moments *a, const gan_moments *b, double *fd, gan_error *err)
{
    if (!fd)
        return gan_fail(err, "fd", "fd must not be NULL");
    if (check_moments(a, "a", err) < 0 || check_moments(b, "b", err) < 0)
        return -1;
    if (a->d != b->d)
        return gan_fail(err, "b", "b has %d dimensions but a has %d: moments must agree", b->d,
                        a->d);
    const int d = a->d;
    const size_t dz = (size_t)d, dd = dz * dz;
    double *buf = malloc((3 * dd + dz) * sizeof *buf);
    if (!buf)
        return gan_fail(err, "a", "out of memory for a Fréchet distance in %d dimensions", d);
    double *v = buf, *root = v + dd, *t = root + dd, *w = t + dd;

    /* C1^½ = Σ_k √λ_k v_k v_kᵀ = Wᵀ·W with row k of W = λ_k^¼ v_k (λ_k at rounding: 0). */
    memcpy(v, a->cov, dd * sizeof *v);
    if (sym_eig(v, d, w, 1, "the first covariance", err) < 0) {
        free(buf);
        return -1;
    }
    const double floor1 = rounding_floor(w, d);
    for (size_t k = 0; k < dz; k++) {
        double f = w[k] > floor1 ? sqrt(sqrt(w[k])) : 0;
        for (size_t j = 0; j < dz; j++)
            v[k * dz + j] *= f;
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, d, 1.0, v, d, 0.0, root, d);
    for (size_t i = 0; i < dz; i++)
        for (size_t j = i + 1; j < dz; j++)
            root[j * dz + i] = root[i * dz + j];

    /* M = C1^½·C2·C1^½, made exactly symmetric before its eigenvalues are taken. */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, root, d, b->cov, d, 0.0, t,
                d);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, t, d, root, d, 0.0, v, d);
    for (size_t i = 0; i < dz; i++)
        for (size_t j = i + 1; j < dz; j++) {
            double s = 0.5 * (v[i * dz + j] + v[j * dz + i]);
            v[i * dz + j] = v[j * dz + i] = s;
        }
    if (sym_eig(v, d, w, 0, "C1^½·C2·C1^½", err) < 0) {
        free(buf);
        return -1;
    }
    double tr_sqrt = 0, tr1 = 0, tr2 = 0, diff = 0;
    const double floor2 = rounding_floor(w, d);
    for (size_t k = 0; k < dz; k++) {
        tr_sqrt += w[k] > floor2 ? sqrt(w[k]) : 0;
        tr1 += a->cov[k * dz + k];
        tr2 += b->cov[k * dz + k];
        double dm = a->mean[k] - b->mean[k];
        diff += dm * dm;
    }
    free(buf);
    double f = diff + tr1 + tr2 - 2.0 * tr_sqrt;
    *fd = f > 0 ? f : 0; /* ≥ 0 in exact arithmetic; equal moments can round below */
    return 0;
}

/* ---- distances ------------------------------------------------------------ */

/* ‖a − b‖² in double from the original floats (the difference of two floats is exact). */
static double exact_d2(const float *a, const float *b, int d)
{
    double s = 0;
    for (int k = 0; k < d; k++) {
        double t = (double)a[k] - (double)b[k];
        s += t * t;
    }
    return s;
}

/*
 * Rows of x minus centre, rounded to float, into out, and their squared
 * norms (in double, stored as float) into norm2.
 */
static void centre_rows(const float *x, int n, int d, const double *centre, float *out,
                        float *norm2)
{
    for (size_t i = 0; i < (size_t)n; i++) {
        double acc = 0;
        for (size_t k = 0; k < (size_t)d; k++) {
            float v = (float)((double)x[i * (size_t)d + k] - centre[k]);
            out[i * (size_t)d + k] = v;
            acc += (double)v * (double)v;
        }
        norm2[i] = (float)acc;
    }
}

/*
 * The relative bound on a float squared distance's error: the sgemm's dot
 * product (d roundings of u = 2⁻²⁴ on ‖a‖·‖b‖ ≤ (‖a‖² + ‖b‖²)/2, doubled by
 * the −2), centring the inputs in float (≈ 4u), forming ‖a‖² + ‖b‖² − 2a·b
 * (≈ 6u) and a radius rounded to float (u). (d + 16)·2u has twice that.
 */
static float margin_coef(int d)
{
    return (float)(d + 16) * FLT_EPSILON;
}

/* dist (ri × rj) = −2·A_I·B_Jᵀ for rows [i0, i0+ri) of a and [j0, j0+rj) of b. */
static void tile_products(const float *a, int i0, int ri, const float *b, int j0, int rj, int d,
                          float *dist)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ri, rj, d, -2.0f, a + (size_t)i0 * d, d,
                b + (size_t)j0 * d, d, 0.0f, dist, rj);
}

static int max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* ---- k-NN radii ----------------------------------------------------------- */

/*
 * Fold one tile into each row's k smallest float distances (best, ascending,
 * with their indices in best_j); a row's own index is skipped.
 */
static void knn_tile(const float *dist, int i0, int ri, int j0, int rj, const float *norm2, int k,
                     float *best, int *best_j)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < ri; i++) {
        const int self = i0 + i;
        const float *row = dist + (size_t)i * (size_t)rj, ni = norm2[self];
        float *b = best + (size_t)self * (size_t)k;
        int *bj = best_j + (size_t)self * (size_t)k;
        float worst = b[k - 1];
        /* chunks with nothing nearer than the current k-th are skipped after one vectorised
         * look; after the first tiles, that is nearly all of them */
        for (int c0 = 0; c0 < rj; c0 += KNN_CHUNK) {
            const int c1 = rj - c0 < KNN_CHUNK ? rj : c0 + KNN_CHUNK;
            int nearer = 0;
#pragma omp simd reduction(| : nearer)
            for (int j = c0; j < c1; j++)
                nearer |= ni + norm2[j0 + j] + row[j] < worst;
            if (!nearer)
                continue;
            for (int j = c0; j < c1; j++) {
                float s = ni + norm2[j0 + j] + row[j];
                if (s < worst && j0 + j != self) {
                    int p = k - 1;
                    for (; p > 0 && b[p - 1] > s; p--) {
                        b[p] = b[p - 1];
                        bj[p] = bj[p - 1];
                    }
                    b[p] = s;
                    bj[p] = j0 + j;
                    worst = b[k - 1];
                }
            }
        }
    }
}

/* Radii of checked points. */
static int knn_radii2(const float *x, int n, int d, int k, double *radius2, const char *field,
                      gan_error *err)
{
    const size_t nz = (size_t)n, dz = (size_t)d, tile = n < TILE ? nz : TILE;
    float *cx = alloc_array(nz * dz, sizeof *cx), *norm2 = alloc_array(nz, sizeof *norm2);
    float *best = alloc_array(nz * (size_t)k, sizeof *best);
    int *best_j = alloc_array(nz * (size_t)k, sizeof *best_j);
    float *dist = alloc_array(tile * tile, sizeof *dist);
    double *centre = alloc_array(dz, sizeof *centre);
    int rc = 0;
    if (!cx || !norm2 || !best || !best_j || !dist || !centre) {
        rc = gan_fail(err, field, "out of memory for the k-NN radii of %d points of %d dimensions",
                      n, d);
        goto done;
    }
    /* centred on the set's own mean: smaller norms, less cancellation in ‖a‖² + ‖b‖² − 2a·b */
    mean_of(x, n, d, centre);
    centre_rows(x, n, d, centre, cx, norm2);
    for (size_t i = 0; i < nz * (size_t)k; i++)
        best[i] = INFINITY;
    for (int i0 = 0; i0 < n; i0 += (int)tile) {
        int ri = n - i0 < (int)tile ? n - i0 : (int)tile;
        for (int j0 = 0; j0 < n; j0 += (int)tile) {
            int rj = n - j0 < (int)tile ? n - j0 : (int)tile;
            tile_products(cx, i0, ri, cx, j0, rj, d, dist);
            knn_tile(dist, i0, ri, j0, rj, norm2, k, best, best_j);
        }
    }
    /* The radius from the candidates' exact distances: the largest of the k. */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        double r2 = 0;
        for (int q = 0; q < k; q++) {
            const int j = best_j[(size_t)i * (size_t)k + (size_t)q];
            double e = exact_d2(x + (size_t)i * dz, x + (size_t)j * dz, d);
            r2 = e > r2 ? e : r2;
        }
        radius2[i] = r2;
    }
done:
    free(cx);
    free(norm2);
    free(best);
    free(best_j);
    free(dist);
    free(centre);
    return rc;
}

int gan_knn_radii2(const float *x, int n, int d, int k, double *radius2, gan_error *err)
{
    if (check_dims(d, err) < 0)
        return -1;
    if (k < 1)
        return gan_fail(err, "k",
                        "k (the neighbour whose distance is the radius) must be at "
                        "least 1, got %d",
                        k);
    if (check_rows(x, n, k + 1, "x", "the points", "n", err) < 0)
        return -1;
    if (!radius2)
        return gan_fail(err, "radius2", "radius2 must not be NULL");
    if (check_points(x, n, d, "x", "the points", err) < 0)
        return -1;
    return knn_radii2(x, n, d, k, radius2, "x", err);
}

/* ---- precision and recall ------------------------------------------------- */

typedef struct coverage {
    const float *gen, *real;    /* the original points, for exact distances */
    const double *rg2, *rr2;    /* their squared radii */
    const float *cg, *cr;       /* centred on one point, for the sgemm */
    const float *ng2, *nr2;     /* the centred points' squared norms */
    const float *tg, *tr;       /* the radii as floats */
    unsigned char *gen_in;      /* ng: inside some real ball (precision) */
    unsigned char *real_in;     /* nr: inside some generated ball (recall) */
    unsigned char *thread_cols; /* threads × TILE: columns each thread marked in this tile */
    int d;
    float kappa;
} coverage;

/* Whether squared distance s (float, from the tile) is within radius r (float t, exact r2). */
static inline int inside(float s, float base, float t, float kappa, const float *a, const float *b,
                         int d, double r2)
{
    float m = kappa * (base + t);
    if (s <= t - m)
        return 1; /* surely inside */
    if (s >= t + m)
        return 0; /* surely outside */
    return exact_d2(a, b, d) <= r2;
}

/*
 * One generated row g against the tile's real columns [j0, j0+rj): whether
 * g is in some real ball (gen_in), and which columns are in g's (mine). The
 * first loop decides what the float distances can and is vectorised; the
 * second, with the exact distances, runs only for a row where some pair fell
 * within the margin (rare: pairs within ~1e-5 relative of a radius).
 */
static void coverage_row(const coverage *c, const float *row, int g, int j0, int rj,
                         unsigned char *mine)
{
    const float ni = c->ng2[g], tgi = c->tg[g], kappa = c->kappa;
    const float *nr2 = c->nr2 + j0, *tr = c->tr + j0;
    int in = c->gen_in[g], sure_p = 0, maybe_p = 0, maybe_r = 0;
#pragma omp simd reduction(| : sure_p, maybe_p, maybe_r)
    for (int j = 0; j < rj; j++) {
        float base = ni + nr2[j], s = base + row[j];
        float mp = kappa * (base + tr[j]), mr = kappa * (base + tgi);
        int sr = s <= tgi - mr;
        sure_p |= s <= tr[j] - mp;
        maybe_p |= s < tr[j] + mp;
        maybe_r |= !sr & (s < tgi + mr);
        mine[j] |= (unsigned char)sr;
    }
    in |= sure_p;
    if ((!in && maybe_p) || maybe_r) {
        const size_t dz = (size_t)c->d;
        const float *gp = c->gen + (size_t)g * dz;
        for (int j = 0; j < rj; j++) {
            const float *rp = c->real + (size_t)(j0 + j) * dz;
            float base = ni + nr2[j], s = base + row[j];
            if (!in)
                in = inside(s, base, tr[j], kappa, gp, rp, c->d, c->rr2[j0 + j]);
            if (!mine[j])
                mine[j] = (unsigned char)inside(s, base, tgi, kappa, gp, rp, c->d, c->rg2[g]);
        }
    }
    c->gen_in[g] = (unsigned char)in;
}

/* Generated rows [i0, i0+ri) × real columns [j0, j0+rj): mark who is inside whose ball. */
static void coverage_tile(const coverage *c, const float *dist, int i0, int ri, int j0, int rj)
{
#pragma omp parallel
    {
        unsigned char *mine = c->thread_cols + (size_t)thread_num() * TILE;
        memcpy(mine, c->real_in + j0, (size_t)rj); /* read only in this region */
#pragma omp for schedule(static)
        for (int i = 0; i < ri; i++)
            coverage_row(c, dist + (size_t)i * (size_t)rj, i0 + i, j0, rj, mine);
            /* after the loop's barrier: no thread reads real_in any more */
#pragma omp critical(gan_sample_metrics_cover)
        for (int j = 0; j < rj; j++)
            c->real_in[j0 + j] |= mine[j];
    }
}

static int check_radii(const double *r2, int n, const char *field, gan_error *err)
{
    if (!r2)
        return gan_fail(err, field, "%s must not be NULL", field);
    for (int i = 0; i < n; i++)
        if (!(isfinite(r2[i]) && r2[i] >= 0))
            return gan_fail(err, field, "%s[%d] must be a finite squared radius ≥ 0, got %g", field,
                            i, r2[i]);
    return 0;
}

/* Precision and recall of checked points. */
static int precision_recall(const float *gen, const double *rg2, int ng, const float *real,
                            const double *rr2, int nr, int d, double *precision, double *recall,
                            gan_error *err)
{
    const size_t dz = (size_t)d, threads = (size_t)max_threads();
    float *cg = alloc_array((size_t)ng * dz, sizeof *cg),
          *cr = alloc_array((size_t)nr * dz, sizeof *cr);
    float *f = alloc_array(2 * ((size_t)ng + (size_t)nr), sizeof *f);
    float *dist = alloc_array((size_t)TILE * TILE, sizeof *dist);
    double *centre = alloc_array(dz, sizeof *centre);
    unsigned char *flags = alloc_array((size_t)ng + (size_t)nr + threads * TILE, 1);
    int rc = 0;
    if (!cg || !cr || !f || !dist || !centre || !flags) {
        rc = gan_fail(err, "gen",
                      "out of memory for precision and recall of %d against %d points of %d "
                      "dimensions",
                      ng, nr, d);
        goto done;
    }
    coverage c = {.gen = gen,
                  .real = real,
                  .rg2 = rg2,
                  .rr2 = rr2,
                  .cg = cg,
                  .cr = cr,
                  .ng2 = f,
                  .nr2 = f + ng,
                  .tg = f + ng + nr,
                  .tr = f + 2 * (size_t)ng + nr,
                  .gen_in = flags,
                  .real_in = flags + ng,
                  .thread_cols = flags + ng + nr,
                  .d = d,
                  .kappa = margin_coef(d)};
    /* both sets on one centre (distances between them must share it): the real mean */
    mean_of(real, nr, d, centre);
    centre_rows(gen, ng, d, centre, cg, f);
    centre_rows(real, nr, d, centre, cr, f + ng);
    for (int i = 0; i < ng; i++)
        f[ng + nr + i] = (float)rg2[i];
    for (int j = 0; j < nr; j++)
        f[2 * (size_t)ng + nr + j] = (float)rr2[j];
    for (int i0 = 0; i0 < ng; i0 += TILE) {
        int ri = ng - i0 < TILE ? ng - i0 : TILE;
        for (int j0 = 0; j0 < nr; j0 += TILE) {
            int rj = nr - j0 < TILE ? nr - j0 : TILE;
            tile_products(cg, i0, ri, cr, j0, rj, d, dist);
            coverage_tile(&c, dist, i0, ri, j0, rj);
        }
    }
    long gi = 0, ri = 0;
    for (int i = 0; i < ng; i++)
        gi += c.gen_in[i];
    for (int j = 0; j < nr; j++)
        ri += c.real_in[j];
    if (precision)
        *precision = (double)gi / ng;
    if (recall)
        *recall = (double)ri / nr;
done:
    free(cg);
    free(cr);
    free(f);
    free(dist);
    free(centre);
    free(flags);
    return rc;
}

int gan_precision_recall(const float *gen, const double *gen_radius2, int ng, const float *real,
                         const double *real_radius2, int nr, int d, double *precision,
                         double *recall, gan_error *err)
{
    if (check_dims(d, err) < 0 ||
        check_rows(gen, ng, 1, "gen", "the generated points", "ng", err) < 0 ||
        check_rows(real, nr, 1, "real", "the real points", "nr", err) < 0 ||
        check_radii(gen_radius2, ng, "gen_radius2", err) < 0 ||
        check_radii(real_radius2, nr, "real_radius2", err) < 0 ||
        check_points(gen, ng, d, "gen", "the generated points", err) < 0 ||
        check_points(real, nr, d, "real", "the real points", err) < 0)
        return -1;
    return precision_recall(gen, gen_radius2, ng, real, real_radius2, nr, d, precision, recall,
                            err);
}

/* ---- class statistics ----------------------------------------------------- */

static int histogram_of(const float *probs, int n, int hist[GAN_SAMPLE_CLASSES], double *mean_top,
                        const char *field, const char *what, gan_error *err)
{
    for (int c = 0; c < GAN_SAMPLE_CLASSES; c++)
        hist[c] = 0;
    double top_sum = 0;
    for (size_t i = 0; i < (size_t)n; i++) {
        const float *p = probs + i * GAN_SAMPLE_CLASSES;
        double sum = 0;
        int best = 0;
        for (int c = 0; c < GAN_SAMPLE_CLASSES; c++) {
            if (!(p[c] >= 0 && p[c] <= 1)) /* also NaN */
                return gan_fail(err, field,
                                "%s (%s) row %zu, class %d is %g: probabilities must be in [0, 1]",
                                field, what, i, c, (double)p[c]);
            sum += p[c];
            if (p[c] > p[best]) /* strict: ties go to the lowest index */
                best = c;
        }
        if (fabs(sum - 1.0) > 1e-3)
            return gan_fail(err, field,
                            "%s (%s) row %zu sums to %.6g: each row must sum to 1 (probabilities, "
                            "not logits)",
                            field, what, i, sum);
        hist[best]++;
        top_sum += p[best];
    }
    if (mean_top)
        *mean_top = top_sum / n;
    return 0;
}

int gan_class_histogram(const float *probs, int n, int histogram[GAN_SAMPLE_CLASSES],
                        double *mean_top_prob, gan_error *err)
{
    if (check_rows(probs, n, 1, "probs", "the class probabilities", "n", err) < 0)
        return -1;
    if (!histogram)
        return gan_fail(err, "histogram", "histogram must not be NULL");
    return histogram_of(probs, n, histogram, mean_top_prob, "probs", "the class probabilities",
                        err);
}

int gan_class_modes(const int gen[GAN_SAMPLE_CLASSES], const int real[GAN_SAMPLE_CLASSES])
{
    int64_t ng = 0, nr = 0;
    for (int c = 0; c < GAN_SAMPLE_CLASSES; c++) {
        ng += gen[c];
        nr += real[c];
    }
    int modes = 0;
    for (int c = 0; c < GAN_SAMPLE_CLASSES; c++)
        /* g/ng ≥ r/(4·nr), in integers so that a share exactly at the quarter counts */
        if (real[c] > 0 && ng > 0 && 4 * (int64_t)gen[c] * nr >= (int64_t)real[c] * ng)
            modes++;
    return modes;
}

double gan_class_kl(const int gen[GAN_SAMPLE_CLASSES], const int real[GAN_SAMPLE_CLASSES])
{
    double ng = GAN_SAMPLE_CLASSES, nr = GAN_SAMPLE_CLASSES; /* the added ones */
    for (int c = 0; c < GAN_SAMPLE_CLASSES; c++) {
        ng += gen[c];
        nr += real[c];
    }
    double kl = 0;
    for (int c = 0; c < GAN_SAMPLE_CLASSES; c++) {
        double p = (gen[c] + 1.0) / ng, q = (real[c] + 1.0) / nr;
        kl += p * log(p / q);
    }
    return kl;
}

/* ---- the reference and everything at once -------------------------------- */

struct gan_sample_reference {
    int n, d;
    float *features; /* n × d, a copy: exact distances are taken from it */
    double *radius2; /* n: squared k-NN radii, k = GAN_SAMPLE_K */
    gan_moments moments;
    int histogram[GAN_SAMPLE_CLASSES];
};

void gan_sample_reference_free(gan_sample_reference *ref)
{
    if (!ref)
        return;
    free(ref->features);
    free(ref->radius2);
    gan_moments_free(&ref->moments);
    free(ref);
}

gan_sample_reference *gan_sample_reference_new(const float *probs, const float *features, int n,
                                               int d, gan_error *err)
{
    if (check_dims(d, err) < 0 ||
        check_rows(probs, n, GAN_SAMPLE_K + 1, "probs", "the real images' probabilities", "n",
                   err) < 0 ||
        check_rows(features, n, GAN_SAMPLE_K + 1, "features", "the real images' features", "n",
                   err) < 0 ||
        check_points(features, n, d, "features", "the real images' features", err) < 0)
        return NULL;
    gan_sample_reference *ref = calloc(1, sizeof *ref);
    if (!ref) {
        gan_fail(err, "features", "out of memory for a reference of %d images", n);
        return NULL;
    }
    ref->n = n;
    ref->d = d;
    if (histogram_of(probs, n, ref->histogram, NULL, "probs", "the real images' probabilities",
                     err) < 0) {
        gan_sample_reference_free(ref);
        return NULL;
    }
    const size_t nd = (size_t)n * (size_t)d;
    ref->features = malloc(nd * sizeof *ref->features);
    ref->radius2 = malloc((size_t)n * sizeof *ref->radius2);
    if (!ref->features || !ref->radius2) {
        gan_fail(err, "features", "out of memory for a reference of %d images of %d features", n,
                 d);
        gan_sample_reference_free(ref);
        return NULL;
    }
    memcpy(ref->features, features, nd * sizeof *ref->features);
    if (moments_of(features, n, d, "features", &ref->moments, err) < 0 ||
        knn_radii2(features, n, d, GAN_SAMPLE_K, ref->radius2, "features", err) < 0) {
        gan_sample_reference_free(ref);
        return NULL;
    }
    return ref;
}

int gan_sample_reference_count(const gan_sample_reference *ref)
{
    return ref->n;
}

int gan_sample_reference_dims(const gan_sample_reference *ref)
{
    return ref->d;
}

const gan_moments *gan_sample_reference_moments(const gan_sample_reference *ref)
{
    return &ref->moments;
}

const int *gan_sample_reference_histogram(const gan_sample_reference *ref)
{
    return ref->histogram;
}

int gan_sample_metrics_compute(const gan_sample_reference *ref, const float *probs,
                               const float *features, int n, int d, gan_sample_metrics *out,
                               gan_error *err)
{
    if (!ref)
        return gan_fail(err, "reference", "reference must not be NULL");
    if (!out)
        return gan_fail(err, "out", "out must not be NULL");
    if (d != ref->d)
        return gan_fail(err, "d",
                        "d (feature dimensions) is %d but the reference's features have %d", d,
                        ref->d);
    if (check_rows(probs, n, GAN_SAMPLE_K + 1, "probs", "the generated images' probabilities", "n",
                   err) < 0 ||
        check_rows(features, n, GAN_SAMPLE_K + 1, "features", "the generated images' features", "n",
                   err) < 0 ||
        check_points(features, n, d, "features", "the generated images' features", err) < 0)
        return -1;
    gan_sample_metrics m;
    memset(&m, 0, sizeof m);
    m.generated = n;
    m.real = ref->n;
    if (histogram_of(probs, n, m.histogram, &m.mean_top_prob, "probs",
                     "the generated images' probabilities", err) < 0)
        return -1;
    m.modes = gan_class_modes(m.histogram, ref->histogram);
    m.kl = gan_class_kl(m.histogram, ref->histogram);

    gan_moments mom;
    if (moments_of(features, n, d, "features", &mom, err) < 0)
        return -1;
    int rc = gan_frechet_distance(&ref->moments, &mom, &m.fid, err);
    gan_moments_free(&mom);
    if (rc < 0)
        return -1;

    double *radius2 = malloc((size_t)n * sizeof *radius2);
    if (!radius2)
        return gan_fail(err, "features", "out of memory for the radii of %d generated images", n);
    rc = knn_radii2(features, n, d, GAN_SAMPLE_K, radius2, "features", err);
    if (rc == 0)
        rc = precision_recall(features, radius2, n, ref->features, ref->radius2, ref->n, d,
                              &m.precision, &m.recall, err);
    free(radius2);
    if (rc < 0)
        return -1;
    *out = m;
    return 0;
}

int gan_sample_metrics_add_cjson(const gan_sample_metrics *m, cJSON *obj)
{
    if (!m || !obj)
        return -1;
    /* exactly (raw items): evaluations.jsonl is read back, and a run's best fid is one of these */
    if (!gan_json_add_double(obj, "fid", m->fid) ||
        !gan_json_add_double(obj, "precision", m->precision) ||
        !gan_json_add_double(obj, "recall", m->recall) ||
        !cJSON_AddNumberToObject(obj, "modes", m->modes) ||
        !gan_json_add_double(obj, "kl", m->kl) ||
        !gan_json_add_double(obj, "mean_top_prob", m->mean_top_prob))
        return -1;
    cJSON *h = cJSON_CreateIntArray(m->histogram, GAN_SAMPLE_CLASSES);
    if (!h)
        return -1;
    if (!cJSON_AddItemToObject(obj, "histogram", h)) {
        cJSON_Delete(h);
        return -1;
    }
    return 0;
}

int gan_sample_metrics_from_cjson(const cJSON *obj, gan_sample_metrics *m)
{
    static const char *const names[] = {"fid",   "precision", "recall",
                                        "modes", "kl",        "mean_top_prob"};
    double v[6];
    if (!cJSON_IsObject(obj))
        return -1;
    for (int i = 0; i < 6; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, names[i]);
        if (!cJSON_IsNumber(it))
            return -1;
        v[i] = it->valuedouble;
    }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(obj, "histogram");
    if (!cJSON_IsArray(h) || cJSON_GetArraySize(h) != GAN_SAMPLE_CLASSES)
        return -1;
    memset(m, 0, sizeof *m);
    int c = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, h)
    {
        if (!cJSON_IsNumber(it))
            return -1;
        m->histogram[c] = it->valueint;
        m->generated += it->valueint;
        c++;
    }
    m->fid = v[0];
    m->precision = v[1];
    m->recall = v[2];
    m->modes = (int)v[3];
    m->kl = v[4];
    m->mean_top_prob = v[5];
    return 0;
}
