/*
 * gan/sample_metrics.h — statistics of generated samples in a classifier's
 * feature space, against held-out real images: the Fréchet distance of
 * Heusel et al. 2017 (TTUR's "FID", here in our own classifier's features,
 * not Inception's), the k-NN precision and recall of Kynkäänniemi et al.
 * 2019, and class statistics from the classifier's probabilities.
 *
 * Inputs are plain host arrays, row-major, borrowed for the call and never
 * kept: for N images, probabilities N × 10 (rows sum to 1) and features
 * N × d. Nothing here knows the classifier. Non-finite values are an error
 * naming the array and row (a diverged generator).
 *
 * Fréchet distance. Moments: mean and covariance (divisor n − 1, as TTUR's
 * np.cov), accumulated in double from centred double blocks with dsyrk.
 *   FD = ‖μ1 − μ2‖² + tr C1 + tr C2 − 2·tr((C1^½ C2 C1^½)^½)
 * This is TTUR's tr sqrtm(C1·C2) (C1·C2 is similar to C1^½ C2 C1^½), computed
 * with symmetric eigendecompositions (LAPACK dsyevd) instead of a general
 * sqrtm: C1^½ from C1's eigenpairs, then the eigenvalues of C1^½ C2 C1^½.
 * Both matrices are positive semi-definite, so eigenvalues below 0 are
 * rounding and are clipped to 0; so are those below d·ε times the largest
 * (rounding of a null direction — fewer points than dimensions, a dead
 * feature — whose square root would otherwise add ~1e-7·√‖M‖ each). No ε·I
 * offset is needed for singular covariances. A final FD below 0 (rounding,
 * for two equal moments) is reported as 0. Moments are a value of their own
 * so that the real set's are computed once and reused.
 *
 * Precision and recall, k = GAN_SAMPLE_K (3). A point's radius is its
 * distance to its k-th nearest neighbour in its own set, itself excluded by
 * index, not by distance: a point with k exact duplicates has radius 0, and
 * a duplicate of it is still inside that ball. Balls are closed (distance ≤
 * radius, as the authors' code). Precision is the fraction of generated
 * points inside at least one real point's ball, recall the fraction of real
 * points inside at least one generated point's ball. Radii are kept squared
 * (exact squares, no sqrt round trip).
 *
 * How, and how exact: distances come from float sgemm in 1024 × 1024 tiles
 * (‖a‖² + ‖b‖² − 2a·b on centred copies; at most 4 MB of distances at a
 * time, never the full n × n), scanned in parallel (OpenMP). A float
 * distance carries an error of about d·2⁻²⁴·(‖a‖² + ‖b‖²), so every decision
 * it cannot make safely (a distance within that bound of a radius) and every
 * radius is recomputed in double from the original floats, Σ(a_k − b_k)².
 * Counts are then those of a double-precision brute force; only a radius
 * whose k-th and (k+1)-th neighbours lie within that bound of each other can
 * come out as the wrong one of the two, off by no more than the bound.
 *
 * Class statistics. A point's class is the argmax of its probabilities
 * (ties to the lowest index). `modes` counts the classes c whose share of
 * the real images is > 0 and whose generated share is at least a quarter of
 * it (g_c/N_g ≥ r_c/(4·N_r), compared in integers). KL(generated ‖ real) of
 * the two histograms, in nats, with add-one (Laplace) smoothing of both so
 * that an empty bin is finite:
 *   KL = Σ_c p_c·ln(p_c/q_c),  p_c = (g_c + 1)/(N_g + 10),  q_c = (r_c + 1)/(N_r + 10).
 * mean_top_prob is the mean over generated images of their largest class
 * probability.
 *
 * Errors: -1 with err->field naming the bad argument ("n", "d", "features",
 * "probs", ...) or "cov" for a LAPACK failure (its info named); 0 on
 * success. No global state; a reference is read only once made, so any
 * number of threads may evaluate against one reference at once.
 */
#ifndef GAND_GAN_SAMPLE_METRICS_H
#define GAND_GAN_SAMPLE_METRICS_H

#include "gan/error.h"

enum {
    GAN_SAMPLE_CLASSES = 10, /* columns of the probabilities */
    GAN_SAMPLE_K = 3         /* the k of the k-NN radii (Kynkäänniemi et al.'s choice) */
};

/* ---- moments and the Fréchet distance ------------------------------------ */

/*
 * The first two moments of a set of n points in d dimensions. Made by
 * gan_moments_compute (then owned: gan_moments_free), or filled by hand with
 * the caller's arrays to compare known Gaussians.
 */
typedef struct gan_moments {
    int n;        /* points they come from (informational) */
    int d;        /* dimensions */
    double *mean; /* d */
    double *cov;  /* d × d, row-major, symmetric positive semi-definite */
} gan_moments;

/* Mean and covariance (divisor n − 1) of x (n × d); n ≥ 2, d ≥ 1. */
int gan_moments_compute(const float *x, int n, int d, gan_moments *out, gan_error *err);
/* Free what gan_moments_compute allocated (NULL or zeroed: nothing). */
void gan_moments_free(gan_moments *m);

/* The Fréchet distance between the Gaussians of two moments of equal d. */
int gan_frechet_distance(const gan_moments *a, const gan_moments *b, double *fd, gan_error *err);

/* ---- precision and recall ------------------------------------------------- */

/*
 * radius2[i] = the squared distance from x_i to its k-th nearest neighbour
 * among the other rows of x (n × d); 1 ≤ k < n.
 */
int gan_knn_radii2(const float *x, int n, int d, int k, double *radius2, gan_error *err);

/*
 * Precision and recall of generated points gen (ng × d, squared radii
 * gen_radius2) against real points real (nr × d, real_radius2), the radii
 * from gan_knn_radii2 with the same k. Either output may be NULL.
 */
int gan_precision_recall(const float *gen, const double *gen_radius2, int ng, const float *real,
                         const double *real_radius2, int nr, int d, double *precision,
                         double *recall, gan_error *err);

/* ---- class statistics ----------------------------------------------------- */

/*
 * histogram[c] = rows of probs (n × 10) whose argmax is c; *mean_top_prob
 * (may be NULL) = mean of each row's largest probability. Probabilities must
 * be finite, ≥ 0, and each row's sum within 1e-3 of 1 (logits are refused).
 */
int gan_class_histogram(const float *probs, int n, int histogram[GAN_SAMPLE_CLASSES],
                        double *mean_top_prob, gan_error *err);
/* Classes the generator covers (see above); histograms of counts ≥ 0. */
int gan_class_modes(const int gen[GAN_SAMPLE_CLASSES], const int real[GAN_SAMPLE_CLASSES]);
/* KL(generated ‖ real) of two histograms with add-one smoothing, nats. */
double gan_class_kl(const int gen[GAN_SAMPLE_CLASSES], const int real[GAN_SAMPLE_CLASSES]);

/* ---- everything at once against a prepared real set ---------------------- */

/*
 * What an evaluation compares against: the real set's moments, features,
 * k-NN radii and class histogram, prepared once (its radii are the
 * expensive part) and read only afterwards.
 */
typedef struct gan_sample_reference gan_sample_reference;

/*
 * Prepare a reference from n real images: probs (n × 10) and features
 * (n × d), copied; n > GAN_SAMPLE_K, d ≥ 1. NULL with err filled on failure.
 */
gan_sample_reference *gan_sample_reference_new(const float *probs, const float *features, int n,
                                               int d, gan_error *err);
void gan_sample_reference_free(gan_sample_reference *ref);
/* The reference's points, dimensions, moments and class histogram. */
int gan_sample_reference_count(const gan_sample_reference *ref);
int gan_sample_reference_dims(const gan_sample_reference *ref);
const gan_moments *gan_sample_reference_moments(const gan_sample_reference *ref);
const int *gan_sample_reference_histogram(const gan_sample_reference *ref);

typedef struct gan_sample_metrics {
    double fid;                        /* Fréchet distance, generated vs real features */
    double precision;                  /* generated points inside the real manifold, 0..1 */
    double recall;                     /* real points inside the generated manifold, 0..1 */
    int histogram[GAN_SAMPLE_CLASSES]; /* generated images per predicted class */
    int modes;                         /* classes covered, 0..10 */
    double kl;                         /* KL(generated ‖ real) of the histograms, nats */
    double mean_top_prob;              /* mean largest class probability of the generated */
    int generated;                     /* generated images evaluated */
    int real;                          /* real images in the reference */
} gan_sample_metrics;

/*
 * All of the above for n generated images (probs n × 10, features n × d)
 * against ref; d must be the reference's, n > GAN_SAMPLE_K.
 */
int gan_sample_metrics_compute(const gan_sample_reference *ref, const float *probs,
                               const float *features, int n, int d, gan_sample_metrics *out,
                               gan_error *err);

/*
 * Add the metrics to a JSON object: fid, precision, recall, modes, kl,
 * mean_top_prob (numbers) and histogram (10 counts). -1 when cJSON runs out
 * of memory (obj may then hold some of the fields).
 */
struct cJSON;
int gan_sample_metrics_add_cjson(const gan_sample_metrics *m, struct cJSON *obj);
/* Read those fields back (generated = the histogram's sum, real 0); -1 when one is missing. */
int gan_sample_metrics_from_cjson(const struct cJSON *obj, gan_sample_metrics *m);

#endif
