/*
 * gan/parzen.h — the Gaussian Parzen-window log-likelihood of Goodfellow et
 * al. 2014 (Breuleux et al.'s protocol, as in the GAN paper's parzen_ll.py).
 *
 * Given m generated samples S (m × d) and an image x (d floats), with an
 * isotropic Gaussian kernel of width σ:
 *
 *   log p(x) = logsumexp_j(−‖x − s_j‖² / (2σ²)) − log m − (d/2)·log(2πσ²)
 *
 * A set of n images is scored by the mean of log p over the set, with its
 * standard error std(log p) / sqrt(n), std with divisor n (numpy's default,
 * as the paper's code). σ is picked on a validation set as the grid value
 * with the highest mean (ties to the first); the paper's grid is
 * logspace(−1, 0, 10) = 10^(−1 + k/9), k = 0..9.
 *
 * How: both sets are centred on the samples' mean (distances do not change;
 * cancellation does), the samples are uploaded to the backend once, and the
 * squared distances come from one sgemm per block of at most 256 images:
 * ‖x‖² − 2 x·s + ‖s‖², with the norms in double on the host and tiny negative
 * results clamped to 0. Each block's distance matrix is downloaded and the
 * log-sum-exp is done in double on the host (max subtraction). Memory is
 * bounded by the samples plus two blocks (about 10 MB each for m = 10,000).
 * Choosing σ computes the distances once and scores every grid value from
 * them. The sgemm is float32, so a distance carries an absolute error of
 * roughly 1e-7·‖x‖·‖s‖ — about 1e-3 nats per image at σ = 0.1 on MNIST, far
 * below the ±2 nats the paper reports, and comparable to the paper's own
 * float32 code.
 *
 * Inputs: all arrays are host memory, row-major, read only, borrowed for the
 * call and never kept. Non-finite pixels are an error (a diverged generator),
 * naming the array and row. Every backend buffer is allocated and freed
 * inside the call; nothing is kept between calls and there is no global
 * state, so the functions are reentrant. Threads: the backend is used by the
 * calling thread for the whole call, so the caller must own it (one thread
 * at a time, see kernels/backend.h); the shared CPU backend is fine from any
 * thread. A backend that already holds a sticky error is refused (its error
 * could not be told from one of ours). Errors: -1 with err->field naming the
 * bad argument ("m", "sigma", "samples", ...) or "backend"; 0 on success.
 */
#ifndef GAND_GAN_PARZEN_H
#define GAND_GAN_PARZEN_H

#include "gan/error.h"
#include "kernels/backend.h"

enum { GAN_PARZEN_PAPER_SIGMAS = 10 };

typedef struct gan_parzen_result {
    double mean_ll;   /* mean log-likelihood of the test set, nats */
    double stderr_ll; /* its standard error */
    double sigma;     /* the width chosen on the validation set */
    int samples;      /* m */
    int images;       /* test images scored */
} gan_parzen_result;

/* The paper's grid, 10^(−1 + k/9) for k = 0..9, into sigmas[10]. */
void gan_parzen_paper_sigmas(double sigmas[GAN_PARZEN_PAPER_SIGMAS]);

/*
 * Score n images x (n × d) against m samples (m × d) with width sigma:
 * *mean = mean log p, *std_err = its standard error. m, n, d ≥ 1; sigma
 * finite and > 0.
 */
int gan_parzen_score(gk_backend *be, const float *samples, int m, const float *x, int n, int d,
                     double sigma, double *mean, double *std_err, gan_error *err);

/*
 * Pick σ from sigmas[ns] (NULL: the paper's grid, ns ignored) as the one with
 * the highest mean log-likelihood of valid (nv × d). *best_mean may be NULL.
 */
int gan_parzen_select_sigma(gk_backend *be, const float *samples, int m, const float *valid, int nv,
                            int d, const double *sigmas, int ns, double *best_sigma,
                            double *best_mean, gan_error *err);

/*
 * The paper's protocol: σ from the paper's grid on valid (nv × d), then test
 * (nt × d) scored with it. The samples are uploaded once for both sets.
 */
int gan_parzen_evaluate(gk_backend *be, const float *samples, int m, const float *valid, int nv,
                        const float *test, int nt, int d, gan_parzen_result *out, gan_error *err);

#endif
