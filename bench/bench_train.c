/*
 * bench/bench_train.c — training speed against the backend's own sgemm rate.
 *
 * For each batch size the benchmark first records the exact matrix products
 * one training iteration issues (a backend whose sgemm entry records the
 * shapes, then forwards), replays just those products to measure the rate
 * sgemm reaches at the model's shapes (and betas) — the ceiling, the fastest
 * of five rounds of 0.4 s — and then times real training epochs. It prints
 * samples/s, the achieved rate over the minimal FLOP count
 * (gan_flops_per_sample), the ratio of the two rates, the process's resident
 * memory once the epochs are trained, and its peak resident memory so far
 * (getrusage's ru_maxrss: with batch sizes in increasing order, the last
 * row's peak is that of the largest batch; run --batches 1024 alone for that
 * batch's own peak).
 *
 * On a backend with graphs (CUDA) the iterations run as a replayed CUDA graph;
 * when batch 64 is measured, a second row times it with graphs off (a second
 * backend opened with GAND_CUDA_GRAPHS=0), since launch overhead is what
 * graphs remove and it dominates at that batch size.
 *
 * Where the time goes: on a backend without graphs (the CPU, whose ops return
 * when their work is done) each batch size then runs a few hundred more
 * iterations with every op wrapped in a timer, and a second table gives each
 * op's share of an iteration's wall time, sgemm included, and what no op
 * accounts for (the trainer's own code between calls).
 *
 * A benchmark prints numbers; it asserts nothing. Usage:
 *   bench_train [--data IDX] [--device cpu|cuda|auto] [--batches 64,256,1024]
 *               [--epochs N] [--max-iterations N] [--preset seed] [--tf32]
 */
#include <getopt.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gan/config.h"
#include "gan/idx.h"
#include "gan/trainer.h"
#include "kernels/backend.h"
#include "kernels/cpu/blas_kernels.h"

typedef struct gemm_call {
    bool ta, tb;
    int m, n, k;
    float beta; /* 0 or 1: OpenBLAS runs some shapes at different speeds with either */
} gemm_call;

static gemm_call calls[256];
static int ncalls;
static bool recording;
static gk_backend_ops recording_ops;
static const gk_backend_ops *real_ops;

static void recording_sgemm(gk_backend *be, bool ta, bool tb, int m, int n, int k, float alpha,
                            const float *a, int lda, const float *b, int ldb, float beta, float *c,
                            int ldc)
{
    if (recording && ncalls < (int)(sizeof calls / sizeof calls[0]))
        calls[ncalls++] = (gemm_call){ta, tb, m, n, k, beta};
    real_ops->sgemm(be, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * The ops one iteration calls, each timed by a wrapper (the CPU's ops return when done,
 * so a call's wall time is its cost): X(name, parameters, arguments).
 */
#define TIMED_OPS(X)                                                                               \
    X(copy, (gk_backend * be, void *dst, const void *src, size_t bytes), (be, dst, src, bytes))    \
    X(sgemm,                                                                                       \
      (gk_backend * be, bool ta, bool tb, int m, int n, int k, float alpha, const float *a,        \
       int lda, const float *b, int ldb, float beta, float *c, int ldc),                           \
      (be, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))                                  \
    X(bias_add, (gk_backend * be, float *y, const float *bias, int rows, int cols),                \
      (be, y, bias, rows, cols))                                                                   \
    X(bias_relu,                                                                                   \
      (gk_backend * be, float *y, const float *x, const float *bias, int rows, int cols,           \
       float slope),                                                                               \
      (be, y, x, bias, rows, cols, slope))                                                         \
    X(bias_grad,                                                                                   \
      (gk_backend * be, float *db, const float *dy, int rows, int cols, bool accumulate),          \
      (be, db, dy, rows, cols, accumulate))                                                        \
    X(linear1_backward,                                                                            \
      (gk_backend * be, float *dx, float *dw, float *db, const float *dy, const float *x,          \
       const float *w, int rows, int cols, bool accumulate),                                       \
      (be, dx, dw, db, dy, x, w, rows, cols, accumulate))                                          \
    X(relu_forward, (gk_backend * be, float *y, const float *x, size_t n, float slope),            \
      (be, y, x, n, slope))                                                                        \
    X(relu_backward,                                                                               \
      (gk_backend * be, float *dx, const float *dy, const float *y, size_t n, float slope),        \
      (be, dx, dy, y, n, slope))                                                                   \
    X(sigmoid_forward, (gk_backend * be, float *y, const float *x, size_t n), (be, y, x, n))       \
    X(sigmoid_backward, (gk_backend * be, float *dx, const float *dy, const float *y, size_t n),   \
      (be, dx, dy, y, n))                                                                          \
    X(maxout_forward,                                                                              \
      (gk_backend * be, float *y, int32_t *argmax, const float *x, int rows, int units,            \
       int pieces),                                                                                \
      (be, y, argmax, x, rows, units, pieces))                                                     \
    X(bias_maxout,                                                                                 \
      (gk_backend * be, float *y, int32_t *argmax, const float *x, const float *bias, int rows,    \
       int units, int pieces),                                                                     \
      (be, y, argmax, x, bias, rows, units, pieces))                                               \
    X(maxout_backward,                                                                             \
      (gk_backend * be, float *dx, float *db, const float *dy, const float *mask,                  \
       const int32_t *argmax, int rows, int units, int pieces, bool accumulate),                   \
      (be, dx, db, dy, mask, argmax, rows, units, pieces, accumulate))                             \
    X(dropout_forward,                                                                             \
      (gk_backend * be, float *y, float *mask, const float *x, size_t n, float p, gk_rng rng),     \
      (be, y, mask, x, n, p, rng))                                                                 \
    X(dropout_backward,                                                                            \
      (gk_backend * be, float *dx, const float *dy, const float *mask, size_t n),                  \
      (be, dx, dy, mask, n))                                                                       \
    X(sigmoid_bce,                                                                                 \
      (gk_backend * be, float *dlogit, float *acc, const float *logit, int n, float target,        \
       float grad_scale),                                                                          \
      (be, dlogit, acc, logit, n, target, grad_scale))                                             \
    X(adam,                                                                                        \
      (gk_backend * be, float *param, float *grad, float *m, float *v, size_t n, gk_adam hp),      \
      (be, param, grad, m, v, n, hp))                                                              \
    X(sgd_momentum,                                                                                \
      (gk_backend * be, float *param, float *grad, float *vel, size_t n, gk_lr lr, gk_step step,   \
       gk_momentum momentum, gk_step epoch),                                                       \
      (be, param, grad, vel, n, lr, step, momentum, epoch))                                        \
    X(fill_normal, (gk_backend * be, float *x, size_t n, gk_rng rng, float mean, float std),       \
      (be, x, n, rng, mean, std))                                                                  \
    X(fill_uniform, (gk_backend * be, float *x, size_t n, gk_rng rng, float lo, float hi),         \
      (be, x, n, rng, lo, hi))                                                                     \
    X(gather_rows_u8,                                                                              \
      (gk_backend * be, float *dst, const uint8_t *src, const int32_t *index, int rows, int cols,  \
       float scale, gk_step block, int64_t blocks),                                                \
      (be, dst, src, index, rows, cols, scale, block, blocks))                                     \
    X(sum, (gk_backend * be, float *acc, const float *x, size_t n), (be, acc, x, n))               \
    X(fill, (gk_backend * be, float *x, size_t n, float value), (be, x, n, value))                 \
    X(axpy, (gk_backend * be, float *y, const float *x, size_t n, float a), (be, y, x, n, a))      \
    X(ema_update,                                                                                  \
      (gk_backend * be, float *y, const float *x, size_t n, double decay, gk_step step),           \
      (be, y, x, n, decay, step))                                                                  \
    X(clip_row_norms, (gk_backend * be, float *W, int rows, int cols, float max_norm),             \
      (be, W, rows, cols, max_norm))                                                               \
    X(mark_nonfinite, (gk_backend * be, float *acc, int n, int slot, gk_step tag),                 \
      (be, acc, n, slot, tag))                                                                     \
    X(counters_add, (gk_backend * be, int64_t * c, gk_counters delta), (be, c, delta))

#define OP_ENUM(name, params, args) OP_##name,
enum { TIMED_OPS(OP_ENUM) OP_COUNT };
#define OP_NAME(name, params, args) #name,
static const char *const op_names[OP_COUNT] = {TIMED_OPS(OP_NAME)};
static double op_seconds[OP_COUNT];
static long op_calls[OP_COUNT];
#define OP_TIMED(name, params, args)                                                               \
    static void timed_##name params                                                                \
    {                                                                                              \
        double t0 = now();                                                                         \
        real_ops->name args;                                                                       \
        op_seconds[OP_##name] += now() - t0;                                                       \
        op_calls[OP_##name]++;                                                                     \
    }
TIMED_OPS(OP_TIMED)

static gk_backend_ops timed_ops;

static void timed_ops_init(void)
{
    timed_ops = *real_ops;
#define OP_SET(name, params, args) timed_ops.name = timed_##name;
    TIMED_OPS(OP_SET)
}

/*
 * Replay the recorded products in rounds of at least round_seconds (and 3 replays), `rounds`
 * times; seconds per iteration of the fastest round. The fastest, not the mean: this is the
 * ceiling, and on a shared machine another job's burst only ever slows a round down.
 */
static double time_gemms(gk_backend *be, double round_seconds, int rounds)
{
    size_t biggest = 0;
    for (int i = 0; i < ncalls; i++) {
        size_t a = (size_t)calls[i].m * calls[i].k, b = (size_t)calls[i].k * calls[i].n,
               c = (size_t)calls[i].m * calls[i].n;
        size_t mx = a > b ? a : b;
        mx = mx > c ? mx : c;
        biggest = mx > biggest ? mx : biggest;
    }
    float *A = be->ops->alloc(be, biggest * 4), *B = be->ops->alloc(be, biggest * 4),
          *C = be->ops->alloc(be, biggest * 4);
    gk_rng r = {1, 99, gk_step_value(0)};
    be->ops->fill_uniform(be, A, biggest, r, -1, 1);
    be->ops->fill_uniform(be, B, biggest, r, -1, 1);
    double best = 0;
    for (int round = 0; round < rounds; round++) {
        int reps = 0;
        double t0 = now(), t;
        do {
            for (int i = 0; i < ncalls; i++) {
                const gemm_call *g = &calls[i];
                int lda = g->ta ? g->m : g->k, ldb = g->tb ? g->k : g->n;
                real_ops->sgemm(be, g->ta, g->tb, g->m, g->n, g->k, 1.0f, A, lda, B, ldb, g->beta,
                                C, g->n);
            }
            be->ops->synchronize(be);
            reps++;
            t = now() - t0;
        } while (t < round_seconds || reps < 3);
        if (round == 0 || t / reps < best)
            best = t / reps;
    }
    be->ops->free(be, A);
    be->ops->free(be, B);
    be->ops->free(be, C);
    return best;
}

/*
 * The process's resident memory now, in MiB: measured while the trainer (its
 * data set, weights, optimiser state and batch buffers, all touched by
 * training) is alive, after the sgemm replay's buffers were freed (main
 * keeps glibc from holding on to freed large blocks, so they do not count).
 */
static double resident_mib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    if (f)
        fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

/* The process's peak resident memory so far, in MiB (ru_maxrss is in KiB on Linux). */
static double peak_mib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_maxrss / 1024.0;
}

static double gemm_flops(void)
{
    double f = 0;
    for (int i = 0; i < ncalls; i++)
        f += 2.0 * calls[i].m * calls[i].n * calls[i].k;
    return f;
}

static int cmp_share(const void *a, const void *b)
{
    double x = op_seconds[*(const int *)a], y = op_seconds[*(const int *)b];
    return x < y ? 1 : x > y ? -1 : 0;
}

static char shares[OP_COUNT + 2][160];
static int nshares;

/*
 * About a second (at least 20 iterations) of training with every op timed;
 * the shares are kept for the table printed after the main one.
 */
static int time_shares(gk_backend *be, gan_trainer *t, int batch)
{
    gan_error err;
    memset(op_seconds, 0, sizeof op_seconds);
    memset(op_calls, 0, sizeof op_calls);
    timed_ops_init();
    const gk_backend_ops *was = be->ops;
    be->ops = &timed_ops;
    long iterations = 0;
    double wall = 0;
    while (wall < 1.0 || iterations < 20) {
        if (gan_trainer_epoch_complete(t)) { /* not timed: once per epoch */
            gan_epoch_metrics m;
            be->ops = was;
            if (gan_trainer_finish_epoch(t, &m, &err) != 0)
                break;
            be->ops = &timed_ops;
        }
        double t0 = now();
        if (gan_trainer_step(t, &err) != 0) {
            be->ops = was;
            fprintf(stderr, "bench_train: %s\n", err.message);
            return -1;
        }
        wall += now() - t0;
        iterations++;
    }
    be->ops = was;
    int order[OP_COUNT];
    double in_ops = 0;
    for (int i = 0; i < OP_COUNT; i++) {
        order[i] = i;
        in_ops += op_seconds[i];
    }
    qsort(order, OP_COUNT, sizeof order[0], cmp_share);
    char *row = shares[nshares++];
    int used = snprintf(row, sizeof shares[0], "| %d | %.0f µs |", batch, wall / iterations * 1e6);
    double rest = 0;
    for (int i = 0; i < OP_COUNT; i++) {
        int o = order[i];
        if (i < 6)
            used += snprintf(row + used, sizeof shares[0] - (size_t)used, " %s %.0f%% |",
                             op_names[o], 100 * op_seconds[o] / wall);
        else
            rest += op_seconds[o];
    }
    snprintf(row + used, sizeof shares[0] - (size_t)used, " other ops %.0f%% | no op %.0f%% |",
             100 * rest / wall, 100 * (wall - in_ops) / wall);
    return 0;
}

static void print_shares(void)
{
    if (nshares == 0)
        return;
    printf("\n# where an iteration's time goes (ops timed one by one, largest first)\n"
           "| batch | iteration | 1st | 2nd | 3rd | 4th | 5th | 6th | other ops | no op |\n"
           "|---:|---:|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < nshares; i++)
        printf("%s\n", shares[i]);
}

/* One table row: record and time the sgemm ceiling, then train. Returns -1 on failure. */
static int bench_batch(gk_backend *be, const char *preset, int batch, int tf32, int epochs,
                       int max_iter, const gan_dataset *ds, const char *label)
{
    gan_error err;
    gan_config cfg;
    if (gan_config_preset(&cfg, preset, &err) != 0) {
        fprintf(stderr, "bench_train: %s\n", err.message);
        return -1;
    }
    cfg.batch_size = batch;
    cfg.precision = tf32 ? GAN_PRECISION_TF32 : GAN_PRECISION_FP32;
    cfg.epochs = epochs;
    gan_trainer *t = gan_trainer_new(be, &cfg, ds, &err);
    if (!t) {
        fprintf(stderr, "bench_train: batch %d: %s\n", batch, err.message);
        return -1;
    }
    /* record one iteration's products (this iteration is also the warm-up; on a
     * backend with graphs the next one, the first timed, captures the graph) */
    ncalls = 0;
    recording = true;
    int rc = gan_trainer_step(t, &err);
    recording = false;
    if (rc != 0) {
        fprintf(stderr, "bench_train: %s\n", err.message);
        gan_trainer_free(t);
        return -1;
    }
    double flops_sample = 2.0 * gan_flops_per_sample(&cfg).total;
    double gemm_time = time_gemms(be, 0.4, 5);
    double sgemm_rate = gemm_flops() / gemm_time;

    double train_time = 0;
    long iterations = 0;
    for (int e = 0; e < epochs; e++) {
        double t0 = now();
        while (!gan_trainer_epoch_complete(t) && (max_iter == 0 || iterations < max_iter)) {
            if (gan_trainer_step(t, &err) != 0) {
                fprintf(stderr, "bench_train: %s\n", err.message);
                gan_trainer_free(t);
                return -1;
            }
            iterations++;
        }
        be->ops->synchronize(be);
        train_time += now() - t0;
        if (max_iter && iterations >= max_iter)
            break;
        gan_epoch_metrics m;
        gan_trainer_finish_epoch(t, &m, &err);
    }
    double sps = (double)iterations * cfg.batch_size / train_time;
    double achieved = sps * flops_sample;
    printf("| %d%s | %ld | %.0f | %.1f | %.1f | %.2f | %.0f | %.0f |\n", cfg.batch_size, label,
           iterations, sps, achieved / 1e9, sgemm_rate / 1e9, achieved / sgemm_rate, resident_mib(),
           peak_mib());
    if (cfg.batch_size == 1024 && iterations > 0) {
        double epoch_s = (double)(ds->count / 1024) * 1024 / sps;
        printf("#   reference run (500 epochs at batch 1024 on %d images) extrapolated: "
               "%.0f s of training\n",
               ds->count, 500 * epoch_s);
    }
    fflush(stdout);
    if (!real_ops->graph_begin && time_shares(be, t, batch) != 0) {
        gan_trainer_free(t);
        return -1;
    }
    gan_trainer_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    const char *blas = gk_blas_fit_kernels(); /* the kernels gand itself would run */
    if (blas[0])
        printf("# %s\n", blas);
    const char *data = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
    const char *device = "auto", *preset = "seed";
    char batches_arg[256] = "64,256,1024";
    int epochs = 1, max_iter = 0, tf32 = 0;
    static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                         {"device", required_argument, NULL, 'D'},
                                         {"batches", required_argument, NULL, 'b'},
                                         {"epochs", required_argument, NULL, 'e'},
                                         {"max-iterations", required_argument, NULL, 'm'},
                                         {"preset", required_argument, NULL, 'p'},
                                         {"tf32", no_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'D':
            device = optarg;
            break;
        case 'b':
            snprintf(batches_arg, sizeof batches_arg, "%s", optarg);
            break;
        case 'e':
            epochs = atoi(optarg);
            break;
        case 'm':
            max_iter = atoi(optarg);
            break;
        case 'p':
            preset = optarg;
            break;
        case 't':
            tf32 = 1;
            break;
        default:
            fprintf(stderr, "usage: bench_train [--data IDX] [--device D] [--batches 64,256] "
                            "[--epochs N] [--max-iterations N] [--preset P]\n");
            return 2;
        }
    }
    /* every block of 1 MiB or more is mapped on its own and unmapped when freed: the
     * resident column then counts what is in use, not what malloc kept */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    gan_error err;
    gan_dataset ds;
    if (gan_idx_load_images(data, &ds, &err) != 0) {
        fprintf(stderr, "bench_train: %s\n", err.message);
        return 2;
    }
    char why[512];
    gk_backend *be = gk_backend_open(device, why, sizeof why);
    if (!be) {
        fprintf(stderr, "bench_train: %s\n", why);
        return 2;
    }
    real_ops = be->ops;
    recording_ops = *be->ops;
    recording_ops.sgemm = recording_sgemm;
    be->ops = &recording_ops;

    printf("# gand training benchmark\n# backend: %s (%s)\n# data: %s (%d images)\n", be->ops->name,
           be->device, data, ds.count);
    if (real_ops->graph_begin)
        printf("# CUDA graphs: %s\n", strstr(be->device, "graphs off")
                                          ? "off (GAND_CUDA_GRAPHS=0)"
                                          : "on: one captured iteration replayed per step");
    printf("| batch | iterations timed | samples/s | achieved GFLOP/s | sgemm GFLOP/s at these "
           "shapes | ratio | resident MiB | peak MiB so far |\n"
           "|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    bool has_64 = false;
    for (char *tok = strtok(batches_arg, ","); tok; tok = strtok(NULL, ",")) {
        int batch = atoi(tok);
        has_64 |= batch == 64;
        if (bench_batch(be, preset, batch, tf32, epochs, max_iter, &ds, "") != 0)
            return 1;
    }
    if (has_64 && real_ops->graph_begin && !strstr(be->device, "graphs off")) {
        /* the same at batch 64 without graphs: a second backend that declines them */
        be->ops = real_ops;
        setenv("GAND_CUDA_GRAPHS", "0", 1);
        gk_backend *eager = gk_backend_open(real_ops->name, why, sizeof why);
        if (!eager) {
            fprintf(stderr, "bench_train: %s\n", why);
            return 2;
        }
        recording_ops = *eager->ops;
        recording_ops.sgemm = recording_sgemm;
        eager->ops = &recording_ops;
        int rc = bench_batch(eager, preset, 64, tf32, epochs, max_iter, &ds, " (no graphs)");
        eager->ops = real_ops;
        gk_backend_close(eager);
        if (rc != 0)
            return 1;
    }
    print_shares();
    be->ops = real_ops;
    gk_backend_close(be);
    gan_dataset_free(&ds);
    return 0;
}
