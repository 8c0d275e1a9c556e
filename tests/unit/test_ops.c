/*
 * tests/unit/test_ops.c — every backend op against a float64 reference
 * (test_ops_training.c: the ops that read their step from a counter block,
 * and finite-difference checks of each layer's backward op).
 *
 * The shape follows ggml's test-backend-ops: one table of op tests, one loop
 * over the backends built into this binary. A backend that is built but has
 * no device (CUDA on a machine without a GPU) is skipped with a message.
 * Inputs live in host arrays; each test uploads them, runs the op on the
 * backend, downloads the result and compares by normalised mean squared
 * error (NMSE) against the reference computed in double.
 */
#include "ops_fixture.h"

#include <float.h>

/* ---- Philox-4x32-10 known answers (Random123's kat_vectors) -------------- */

static void test_philox_known_answers(void **state)
{
    (void)state;
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t k = 0; k < sizeof kat / sizeof kat[0]; k++) {
        gk_philox4 c = {{kat[k].ctr[0], kat[k].ctr[1], kat[k].ctr[2], kat[k].ctr[3]}};
        gk_philox4 r = gk_philox4x32_rounds(c, kat[k].key[0], kat[k].key[1], 10);
        for (int i = 0; i < 4; i++)
            assert_int_equal(r.v[i], kat[k].out[i]);
    }
}

/* ---- sgemm -------------------------------------------------------------- */

static void run_sgemm(bool ta, bool tb, int m, int n, int k, float alpha, float beta)
{
    float *a = rand_vec((size_t)m * k, -1, 1), *b = rand_vec((size_t)k * n, -1, 1),
          *c = rand_vec((size_t)m * n, -1, 1);
    int lda = ta ? m : k, ldb = tb ? k : n;
    double *ref = malloc((size_t)m * n * sizeof(double));
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                double av = ta ? a[p * lda + i] : a[i * lda + p];
                double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                s += av * bv;
            }
            ref[i * n + j] = alpha * s + beta * c[i * n + j];
        }
    float *da = dev_from(a, (size_t)m * k * 4), *db = dev_from(b, (size_t)k * n * 4),
          *dc = dev_from(c, (size_t)m * n * 4);
    be->ops->sgemm(be, ta, tb, m, n, k, alpha, da, lda, db, ldb, beta, dc, n);
    float *got = host_from(dc, (size_t)m * n * 4);
    char what[64];
    snprintf(what, sizeof what, "sgemm(%c%c %dx%dx%d)", ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k);
    expect_close(what, got, ref, (size_t)m * n, TOL);
    be->ops->free(be, da);
    be->ops->free(be, db);
    be->ops->free(be, dc);
    free(a);
    free(b);
    free(c);
    free(ref);
    free(got);
}

static void test_sgemm(void **state)
{
    (void)state;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            run_sgemm(ta, tb, 17, 23, 31, 1.0f, 0.0f);
            run_sgemm(ta, tb, 64, 40, 100, 0.5f, 1.0f);
        }
    run_sgemm(false, true, 33, 1, 240, 1.0f, 0.0f); /* the D output layer's shape */
}

/* ---- bias --------------------------------------------------------------- */

static void test_bias(void **state)
{
    (void)state;
    int rows = 37, cols = 130;
    size_t n = (size_t)rows * cols;
    float *y = rand_vec(n, -1, 1), *bias = rand_vec(cols, -1, 1), *db0 = rand_vec(cols, -1, 1);
    double *ref = malloc(n * sizeof(double)), *rb = malloc(cols * sizeof(double));
    for (size_t i = 0; i < n; i++)
        ref[i] = (double)y[i] + bias[i % cols];
    float *dy = dev_from(y, n * 4), *dbias = dev_from(bias, cols * 4);
    be->ops->bias_add(be, dy, dbias, rows, cols);
    float *got = host_from(dy, n * 4);
    expect_close("bias_add", got, ref, n, TOL);

    for (int accumulate = 0; accumulate < 2; accumulate++) {
        for (int c = 0; c < cols; c++) {
            double s = accumulate ? db0[c] : 0.0;
            for (int r = 0; r < rows; r++)
                s += y[r * cols + c];
            rb[c] = s;
        }
        float *d_in = dev_from(y, n * 4), *d_db = dev_from(db0, cols * 4);
        be->ops->bias_grad(be, d_db, d_in, rows, cols, accumulate);
        float *g = host_from(d_db, cols * 4);
        expect_close(accumulate ? "bias_grad(+=)" : "bias_grad", g, rb, cols, TOL);
        free(g);
        be->ops->free(be, d_in);
        be->ops->free(be, d_db);
    }
    be->ops->free(be, dy);
    be->ops->free(be, dbias);
    free(y);
    free(bias);
    free(db0);
    free(ref);
    free(rb);
    free(got);
}

/* ---- fused bias + activation ------------------------------------------- */

/* bias_relu against float64, and bit for bit against bias_add then relu_forward */
static void run_bias_relu(int rows, int cols)
{
    size_t n = (size_t)rows * (size_t)cols;
    float *x = rand_vec(n, -2, 2), *bias = rand_vec((size_t)cols, -1, 1);
    x[0] = -bias[0]; /* a sum of exactly 0: output 0 */
    double *ref = malloc(n * sizeof(double));
    float *dx = dev_from(x, n * 4), *db = dev_from(bias, (size_t)cols * 4),
          *dy = be->ops->alloc(be, n * 4), *dtwo = dev_from(x, n * 4);
    for (int leaky = 0; leaky < 2; leaky++) {
        float slope = leaky ? 0.2f : 0.0f;
        for (size_t i = 0; i < n; i++) {
            double v = (double)x[i] + bias[i % (size_t)cols];
            ref[i] = v > 0 ? v : slope * v;
        }
        be->ops->bias_relu(be, dy, dx, db, rows, cols, slope);
        float *y = host_from(dy, n * 4);
        char what[64];
        snprintf(what, sizeof what, "bias_relu(%dx%d, slope %g)", rows, cols, slope);
        expect_close(what, y, ref, n, TOL);
        assert_true(y[0] == 0.0f);
        /* the unfused pair, in place on a copy of x */
        be->ops->upload(be, dtwo, x, n * 4);
        be->ops->bias_add(be, dtwo, db, rows, cols);
        be->ops->relu_forward(be, dtwo, dtwo, n, slope);
        float *two = host_from(dtwo, n * 4);
        expect_exact("bias_relu vs bias_add + relu_forward", y, two, n);
        /* in place (y == x), as G's layers call it */
        be->ops->upload(be, dtwo, x, n * 4);
        be->ops->bias_relu(be, dtwo, dtwo, db, rows, cols, slope);
        free(two);
        two = host_from(dtwo, n * 4);
        expect_exact("bias_relu in place", two, y, n);
        free(y);
        free(two);
    }
    be->ops->free(be, dx);
    be->ops->free(be, db);
    be->ops->free(be, dy);
    be->ops->free(be, dtwo);
    free(x);
    free(bias);
    free(ref);
}

static void test_bias_relu(void **state)
{
    (void)state;
    run_bias_relu(37, 130);
    run_bias_relu(1100, 1000); /* above the CPU's threading threshold */
}

/* bias_maxout against float64, and bit for bit against bias_add then maxout_forward */
static void run_bias_maxout(int rows, int units, int pieces)
{
    size_t nin = (size_t)rows * units * pieces, nout = (size_t)rows * units,
           nb = (size_t)units * pieces;
    float *x = rand_vec(nin, -2, 2), *bias = rand_vec(nb, -1, 1);
    /* unit 0 of row 0: the sums of pieces 1 and 3 tie exactly and are largest → 1 wins;
     * piece 0 has the largest x, but its bias pulls it below them */
    float xb[5][2] = {{5.0f, -4.0f}, {1.5f, 0.5f}, {0.25f, 0.25f}, {0.5f, 1.5f}, {-1.0f, 0.0f}};
    for (int p = 0; p < pieces && p < 5; p++) {
        x[p] = xb[p][0];
        bias[p] = xb[p][1];
    }
    double *ref = malloc(nout * sizeof(double));
    int32_t *want_arg = malloc(nout * sizeof(int32_t));
    for (size_t o = 0; o < nout; o++) {
        const float *b = bias + (o % (size_t)units) * (size_t)pieces;
        double best = (double)x[o * pieces] + b[0];
        int arg = 0;
        for (int p = 1; p < pieces; p++) {
            double v = (double)x[o * pieces + p] + b[p];
            if (v > best) {
                best = v;
                arg = p;
            }
        }
        want_arg[o] = arg;
        ref[o] = best;
    }
    float *dx = dev_from(x, nin * 4), *db = dev_from(bias, nb * 4),
          *dy = be->ops->alloc(be, nout * 4), *dy2 = be->ops->alloc(be, nout * 4);
    int32_t *darg = be->ops->alloc(be, nout * 4), *darg2 = be->ops->alloc(be, nout * 4);
    be->ops->bias_maxout(be, dy, darg, dx, db, rows, units, pieces);
    float *y = host_from(dy, nout * 4);
    int32_t *arg = host_from(darg, nout * 4);
    char what[64];
    snprintf(what, sizeof what, "bias_maxout(%dx%dx%d)", rows, units, pieces);
    expect_close(what, y, ref, nout, TOL);
    if (pieces == 5)
        assert_int_equal(arg[0], 1);
    assert_memory_equal(arg, want_arg, nout * 4);
    float *xs = host_from(dx, nin * 4);
    assert_memory_equal(xs, x, nin * 4); /* x is left as it was */
    /* the unfused pair: bias_add on x in place, then maxout */
    be->ops->bias_add(be, dx, db, rows, units * pieces);
    be->ops->maxout_forward(be, dy2, darg2, dx, rows, units, pieces);
    float *y2 = host_from(dy2, nout * 4);
    int32_t *arg2 = host_from(darg2, nout * 4);
    expect_exact("bias_maxout vs bias_add + maxout_forward", y, y2, nout);
    assert_memory_equal(arg, arg2, nout * 4);
    void *dev[] = {dx, db, dy, dy2, darg, darg2};
    for (size_t i = 0; i < 6; i++)
        be->ops->free(be, dev[i]);
    void *host[] = {x, bias, ref, want_arg, y, arg, xs, y2, arg2};
    for (size_t i = 0; i < 9; i++)
        free(host[i]);
}

static void test_bias_maxout(void **state)
{
    (void)state;
    run_bias_maxout(9, 13, 5);
    run_bias_maxout(7, 3, 1);      /* one piece: bias_add alone */
    run_bias_maxout(1000, 240, 5); /* D's first layer at batch 1000: threaded on the CPU */
}

/* ---- element-wise activations ------------------------------------------ */

static void test_relu_sigmoid(void **state)
{
    (void)state;
    /* above the threading threshold, odd; on a GPU beyond one wave of a large grid (an
     * H200: 132 SMs × 8 blocks × 256 threads ≈ 270,000 threads), so grid-stride loops go
     * round more than once (on the CPU that size only slows valgrind down) */
    size_t n = on_gpu() ? 1500007 : 70001;
    float *x = rand_vec(n, -3, 3), *dy = rand_vec(n, -1, 1);
    x[0] = 0.0f; /* ReLU at the kink: output 0, gradient 0 */
    double *ref = malloc(n * sizeof(double));
    float *dx = dev_from(x, n * 4), *ddy = dev_from(dy, n * 4), *dyv = be->ops->alloc(be, n * 4),
          *dgrad = be->ops->alloc(be, n * 4);

    for (int leaky = 0; leaky < 2; leaky++) {
        float slope = leaky ? 0.2f : 0.0f;
        be->ops->relu_forward(be, dyv, dx, n, slope);
        float *y = host_from(dyv, n * 4);
        for (size_t i = 0; i < n; i++)
            ref[i] = x[i] > 0 ? x[i] : slope * x[i];
        expect_close(leaky ? "leaky relu_forward" : "relu_forward", y, ref, n, 0);
        be->ops->relu_backward(be, dgrad, ddy, dyv, n, slope);
        float *g = host_from(dgrad, n * 4);
        for (size_t i = 0; i < n; i++)
            ref[i] = x[i] > 0 ? dy[i] : slope * dy[i];
        expect_close(leaky ? "leaky relu_backward" : "relu_backward", g, ref, n, 0);
        free(y);
        free(g);
    }

    be->ops->sigmoid_forward(be, dyv, dx, n);
    float *y = host_from(dyv, n * 4);
    for (size_t i = 0; i < n; i++)
        ref[i] = 1.0 / (1.0 + exp(-(double)x[i]));
    expect_close("sigmoid_forward", y, ref, n, TOL);
    be->ops->sigmoid_backward(be, dgrad, ddy, dyv, n);
    float *g = host_from(dgrad, n * 4);
    for (size_t i = 0; i < n; i++) {
        double s = 1.0 / (1.0 + exp(-(double)x[i]));
        ref[i] = dy[i] * s * (1 - s);
    }
    expect_close("sigmoid_backward", g, ref, n, TOL);
    free(y);
    free(g);
    be->ops->free(be, dx);
    be->ops->free(be, ddy);
    be->ops->free(be, dyv);
    be->ops->free(be, dgrad);
    free(x);
    free(dy);
    free(ref);
}

/* ---- the one-output layer's backward ---------------------------------------- */

static void test_linear1_backward(void **state)
{
    (void)state;
    const int rows = 37;
    for (int cols = 130; cols <= 300; cols += 170) { /* one block of dw's columns, and two */
        size_t n = (size_t)rows * cols;
        float *dy = rand_vec(rows, -1, 1), *x = rand_vec(n, -1, 1), *w = rand_vec(cols, -1, 1),
              *dw0 = rand_vec(cols, -1, 1), db0 = 0.25f;
        float *ddy = dev_from(dy, rows * 4), *dxin = dev_from(x, n * 4),
              *dwt = dev_from(w, cols * 4);
        float *ddx = be->ops->alloc(be, n * 4), *want_dx = malloc(n * 4);
        double *rw = malloc(cols * sizeof(double));
        for (size_t i = 0; i < n; i++)
            want_dx[i] = dy[i / cols] * w[i % cols];
        for (int accumulate = 0; accumulate < 2; accumulate++) {
            float *ddw = dev_from(dw0, cols * 4), *ddb = dev_from(&db0, 4),
                  *dref = dev_from(&db0, 4);
            be->ops->linear1_backward(be, ddx, ddw, ddb, ddy, dxin, dwt, rows, cols, accumulate);
            for (int c = 0; c < cols; c++) {
                double sum = accumulate ? dw0[c] : 0.0;
                for (int r = 0; r < rows; r++)
                    sum += (double)dy[r] * x[(size_t)r * cols + c];
                rw[c] = sum;
            }
            float *gw = host_from(ddw, cols * 4), *gx = host_from(ddx, n * 4);
            expect_close(accumulate ? "linear1_backward dw(+=)" : "linear1_backward dw", gw, rw,
                         cols, TOL);
            expect_exact("linear1_backward dx", gx, want_dx, n);
            be->ops->bias_grad(be, dref, ddy, rows, 1, accumulate);
            float *gb = host_from(ddb, 4), *wb = host_from(dref, 4);
            expect_exact("linear1_backward db", gb, wb, 1);
            free(gw);
            free(gx);
            free(gb);
            free(wb);
            be->ops->free(be, ddw);
            be->ops->free(be, ddb);
            be->ops->free(be, dref);
        }
        /* dx alone (the G step): dx written, nothing else read or written */
        be->ops->fill(be, ddx, n, 7.0f);
        be->ops->linear1_backward(be, ddx, NULL, NULL, ddy, dxin, dwt, rows, cols, false);
        float *gx = host_from(ddx, n * 4);
        expect_exact("linear1_backward dx alone", gx, want_dx, n);
        /* no rows: sums of nothing */
        float *ddw = dev_from(dw0, cols * 4), *ddb = dev_from(&db0, 4);
        be->ops->linear1_backward(be, ddx, ddw, ddb, ddy, dxin, dwt, 0, cols, false);
        expect_zero("linear1_backward dw over no rows", ddw, cols);
        expect_zero("linear1_backward db over no rows", ddb, 1);
        be->ops->free(be, ddw);
        be->ops->free(be, ddb);
        free(gx);
        be->ops->free(be, ddy);
        be->ops->free(be, dxin);
        be->ops->free(be, dwt);
        be->ops->free(be, ddx);
        free(dy);
        free(x);
        free(w);
        free(dw0);
        free(want_dx);
        free(rw);
    }
}

/* ---- maxout ------------------------------------------------------------- */

static void test_maxout(void **state)
{
    (void)state;
    int rows = 9, units = 13, pieces = 5;
    size_t nin = (size_t)rows * units * pieces, nout = (size_t)rows * units;
    float *x = rand_vec(nin, -2, 2), *dy = rand_vec(nout, -1, 1);
    /* ties: unit 0 of row 0 has pieces 1 and 3 equal and largest → index 1 wins */
    x[0] = 0.1f;
    x[1] = 5.0f;
    x[2] = 0.2f;
    x[3] = 5.0f;
    x[4] = -1.0f;
    double *ref = malloc(nin * sizeof(double));
    int32_t *want_arg = malloc(nout * sizeof(int32_t));
    for (size_t o = 0; o < nout; o++) {
        int best = 0;
        for (int p = 1; p < pieces; p++)
            if (x[o * pieces + p] > x[o * pieces + best])
                best = p;
        want_arg[o] = best;
        ref[o] = x[o * pieces + best];
    }
    float *dx = dev_from(x, nin * 4), *dyv = be->ops->alloc(be, nout * 4);
    int32_t *darg = be->ops->alloc(be, nout * 4);
    be->ops->maxout_forward(be, dyv, darg, dx, rows, units, pieces);
    float *y = host_from(dyv, nout * 4);
    int32_t *arg = host_from(darg, nout * 4);
    expect_close("maxout_forward", y, ref, nout, 0);
    assert_int_equal(arg[0], 1);
    assert_memory_equal(arg, want_arg, nout * 4);

    float *ddy = dev_from(dy, nout * 4), *dgrad = dev_from(x, nin * 4); /* garbage to overwrite */
    be->ops->maxout_backward(be, dgrad, NULL, ddy, NULL, darg, rows, units, pieces, false);
    float *g = host_from(dgrad, nin * 4);
    for (size_t i = 0; i < nin; i++)
        ref[i] = (int)(i % pieces) == want_arg[i / pieces] ? dy[i / pieces] : 0.0;
    expect_close("maxout_backward", g, ref, nin, 0);

    /* fused with a dropout mask and the bias gradient: dx exactly dy·mask at the arg-max,
     * db exactly what this backend's bias_grad makes of that dx, set or accumulated */
    float *mask = rand_vec(nout, 0, 1), *db0 = rand_vec(nin / rows, -1, 1);
    for (size_t o = 0; o < nout; o++)
        mask[o] = mask[o] < 0.5f ? 0.0f : 2.0f;
    float *want_dx = malloc(nin * 4);
    for (size_t i = 0; i < nin; i++)
        want_dx[i] =
            (int)(i % pieces) == want_arg[i / pieces] ? dy[i / pieces] * mask[i / pieces] : 0.0f;
    size_t cols = nin / rows;
    float *dmask = dev_from(mask, nout * 4);
    for (int accumulate = 0; accumulate < 2; accumulate++) {
        float *ddb = dev_from(db0, cols * 4), *dref = dev_from(db0, cols * 4);
        be->ops->maxout_backward(be, dgrad, ddb, ddy, dmask, darg, rows, units, pieces, accumulate);
        float *gx = host_from(dgrad, nin * 4);
        expect_exact("maxout_backward(mask)", gx, want_dx, nin);
        be->ops->bias_grad(be, dref, dgrad, rows, (int)cols, accumulate);
        float *gdb = host_from(ddb, cols * 4), *wdb = host_from(dref, cols * 4);
        expect_exact(accumulate ? "maxout_backward's db(+=)" : "maxout_backward's db", gdb, wdb,
                     cols);
        free(gx);
        free(gdb);
        free(wdb);
        be->ops->free(be, ddb);
        be->ops->free(be, dref);
    }
    /* no rows: db = 0 unless accumulating, as bias_grad */
    float *ddb = dev_from(db0, cols * 4);
    be->ops->maxout_backward(be, dgrad, ddb, ddy, dmask, darg, 0, units, pieces, false);
    expect_zero("maxout_backward's db over no rows", ddb, cols);
    be->ops->free(be, ddb);
    be->ops->free(be, dmask);
    free(mask);
    free(db0);
    free(want_dx);

    be->ops->free(be, dx);
    be->ops->free(be, dyv);
    be->ops->free(be, darg);
    be->ops->free(be, ddy);
    be->ops->free(be, dgrad);
    free(x);
    free(dy);
    free(ref);
    free(want_arg);
    free(y);
    free(arg);
    free(g);
}

/* ---- dropout ------------------------------------------------------------ */

static void test_dropout(void **state)
{
    (void)state;
    size_t n = on_gpu() ? 4400009 : 100003; /* a thread per 4 elements: more than one wave */
    float p = 0.8f;
    gk_rng rng = {42, GK_PURPOSE_DROPOUT, {NULL, 7}};
    float *x = rand_vec(n, -1, 1);
    float *dx = dev_from(x, n * 4), *dy = be->ops->alloc(be, n * 4),
          *dmask = be->ops->alloc(be, n * 4);
    be->ops->dropout_forward(be, dy, dmask, dx, n, p, rng);
    float *y = host_from(dy, n * 4), *mask = host_from(dmask, n * 4);
    size_t kept = 0;
    float *want = malloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        float u = gk_philox_uniform(rng.seed, rng.purpose, 7, i);
        float m = u >= p ? 1.0f / (1.0f - p) : 0.0f;
        kept += m != 0.0f;
        want[i] = x[i] * m;
        assert_true(mask[i] == m);
    }
    expect_exact("dropout_forward", y, want, n);
    double frac = (double)kept / n;
    assert_true(fabs(frac - 0.2) < 0.01); /* PyTorch meaning: p = 0.8 drops 80 % */

    float *dg = be->ops->alloc(be, n * 4);
    be->ops->dropout_backward(be, dg, dx, dmask, n);
    float *g = host_from(dg, n * 4);
    expect_exact("dropout_backward", g, want, n); /* dy = x here, so dx = x·mask too */

    be->ops->dropout_forward(be, dy, dmask, dx, n, 0.0f, rng);
    free(y);
    y = host_from(dy, n * 4);
    expect_exact("dropout_forward(p=0)", y, x, n);

    be->ops->free(be, dx);
    be->ops->free(be, dy);
    be->ops->free(be, dmask);
    be->ops->free(be, dg);
    free(x);
    free(y);
    free(mask);
    free(want);
    free(g);
}

/* ---- sigmoid + BCE ------------------------------------------------------ */

static double ref_bce(double prob, double y)
{
    double lp = fmax(log(prob), -100), lq = fmax(log(1 - prob), -100);
    return -(y * lp + (1 - y) * lq);
}

static void test_sigmoid_bce(void **state)
{
    (void)state;
    int n = 1000;
    float *logit = rand_vec(n, -6, 6);
    logit[0] = 120.0f; /* prob rounds to 1: log(1−p) clamps at −100 */
    logit[1] = -120.0f;
    for (int t = 0; t < 2; t++) {
        float target = (float)t, scale = t ? 1.0f : -1.0f;
        double loss = 0, psum = 0;
        double *ref = malloc(n * sizeof(double));
        for (int i = 0; i < n; i++) {
            float prob = gk_sigmoid(logit[i]); /* the clamp acts on the float probability */
            loss += ref_bce(prob, target);
            psum += prob;
            double d = (double)prob * (1 - (double)prob);
            ref[i] = scale * ((prob - target) / fmax(d, 1e-12)) * d / n;
        }
        float acc0[2] = {0.5f, 0.25f};
        float *dl = dev_from(logit, n * 4), *dacc = dev_from(acc0, 8),
              *dg = be->ops->alloc(be, n * 4);
        be->ops->sigmoid_bce(be, dg, dacc, dl, n, target, scale);
        float *acc = host_from(dacc, 8), *g = host_from(dg, n * 4);
        double want_loss[1] = {0.5 + loss / n}, want_p[1] = {0.25 + psum / n};
        expect_close("sigmoid_bce loss", &acc[0], want_loss, 1, TOL);
        expect_close("sigmoid_bce mean prob", &acc[1], want_p, 1, TOL);
        expect_close("sigmoid_bce grad", g, ref, n, TOL);
        /* saturated at the wrong end: the gradient vanishes as PyTorch's does */
        if (t == 1)
            assert_true(fabs(g[1]) < 1e-6);
        be->ops->free(be, dl);
        be->ops->free(be, dacc);
        be->ops->free(be, dg);
        free(acc);
        free(g);
        free(ref);
    }
    free(logit);
}

#include "ops_softmax_cases.h" /* test_softmax, test_softmax_ce, …_gradient, …_bad_label */

/* ---- optimisers -------------------------------------------------------- */

static void test_adam(void **state)
{
    (void)state;
    size_t n = 50000;
    float *p = rand_vec(n, -1, 1), *m = calloc(n, 4), *v = calloc(n, 4);
    double *rp = malloc(n * 8), *rm = calloc(n, 8), *rv = calloc(n, 8);
    for (size_t i = 0; i < n; i++)
        rp[i] = p[i];
    float *dp = dev_from(p, n * 4), *dm = dev_from(m, n * 4), *dv = dev_from(v, n * 4);
    for (int t = 1; t <= 5; t++) {
        float *g = rand_vec(n, -0.1f, 0.1f);
        float *dg = dev_from(g, n * 4);
        gk_adam hp = {{1e-3, 1.0, 0.0}, 0.9f, 0.999f, 1e-8f, 0.0f, gk_step_value(t)};
        be->ops->adam(be, dp, dg, dm, dv, n, hp);
        expect_zero("adam's gradient after the update", dg, n);
        for (size_t i = 0; i < n; i++) {
            rm[i] = 0.9 * rm[i] + 0.1 * g[i];
            rv[i] = 0.999 * rv[i] + 0.001 * (double)g[i] * g[i];
            double denom = sqrt(rv[i]) / sqrt(1 - pow(0.999, t)) + 1e-8;
            rp[i] -= 1e-3 / (1 - pow(0.9, t)) * rm[i] / denom;
        }
        be->ops->free(be, dg);
        free(g);
    }
    float *got = host_from(dp, n * 4);
    expect_close("adam", got, rp, n, TOL);
    be->ops->free(be, dp);
    be->ops->free(be, dm);
    be->ops->free(be, dv);
    free(p);
    free(m);
    free(v);
    free(rp);
    free(rm);
    free(rv);
    free(got);
}

static void test_sgd_momentum(void **state)
{
    (void)state;
    size_t n = 1000;
    float *p = rand_vec(n, -1, 1), *vel = rand_vec(n, -0.1f, 0.1f), *g = rand_vec(n, -1, 1);
    double *ref = malloc(n * 8);
    for (size_t i = 0; i < n; i++)
        ref[i] = p[i] + (0.5 * vel[i] - 0.1 * g[i]);
    float *dp = dev_from(p, n * 4), *dv = dev_from(vel, n * 4), *dg = dev_from(g, n * 4);
    gk_lr lr = {0.1, 1.0, 0.0};
    gk_momentum mom = {0.5, 0.7, 0}; /* no ramp: 0.5 in every epoch */
    be->ops->sgd_momentum(be, dp, dg, dv, n, lr, gk_step_value(1), mom, gk_step_value(9));
    float *got = host_from(dp, n * 4);
    expect_close("sgd_momentum", got, ref, n, TOL);
    expect_zero("sgd_momentum's gradient after the update", dg, n);
    be->ops->free(be, dp);
    be->ops->free(be, dv);
    be->ops->free(be, dg);
    free(p);
    free(vel);
    free(g);
    free(ref);
    free(got);
}

/* ---- random fills -------------------------------------------------------- */

static void test_fills(void **state)
{
    (void)state;
    size_t n = on_gpu() ? 4400009 : 200001; /* more than one wave on a GPU (test_relu_sigmoid) */
    gk_rng rng = {0x123456789abcdefULL, GK_PURPOSE_NOISE_D, {NULL, 3}};
    float *d = be->ops->alloc(be, n * 4);
    be->ops->fill_normal(be, d, n, rng, 0.0f, 1.0f);
    float *x = host_from(d, n * 4);
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        float want = gk_philox_normal(rng.seed, rng.purpose, 3, i);
        if (memcmp(&x[i], &want, 4) != 0) {
            print_error("fill_normal[%zu] = %.9g, want %.9g\n", i, x[i], want);
            fail();
        }
        s += x[i];
        s2 += (double)x[i] * x[i];
    }
    assert_true(fabs(s / n) < 0.01);
    assert_true(fabs(s2 / n - 1.0) < 0.01);
    free(x);

    be->ops->fill_uniform(be, d, n, rng, -2.0f, 3.0f);
    x = host_from(d, n * 4);
    s = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(x[i] >= -2.0f && x[i] < 3.0f);
        float want = -2.0f + 5.0f * gk_philox_uniform(rng.seed, rng.purpose, 3, i);
        assert_true(x[i] == want);
        s += x[i];
    }
    assert_true(fabs(s / n - 0.5) < 0.02);
    /* a different step gives a different stream */
    gk_rng other = rng;
    other.step.offset = 4;
    be->ops->fill_uniform(be, d, 4, other, -2.0f, 3.0f);
    float *y = host_from(d, 16);
    assert_true(memcmp(x, y, 16) != 0);
    free(x);
    free(y);

    be->ops->fill(be, d, n, 2.5f);
    x = host_from(d, n * 4);
    for (size_t i = 0; i < n; i++)
        assert_true(x[i] == 2.5f);
    free(x);
    be->ops->free(be, d);
}

/* ---- gather, sum, axpy ------------------------------------------------- */

static void test_gather_sum_axpy(void **state)
{
    (void)state;
    int count = 50, cols = 784, rows = 7;
    uint8_t *pix = malloc((size_t)count * cols);
    for (int i = 0; i < count * cols; i++)
        pix[i] = (uint8_t)(i * 31 + 7);
    int32_t idx[7] = {49, 0, 3, 3, 17, 48, 1};
    uint8_t *dpix = dev_from(pix, (size_t)count * cols);
    int32_t *didx = dev_from(idx, sizeof idx);
    float *dout = be->ops->alloc(be, (size_t)rows * cols * 4);
    be->ops->gather_rows_u8(be, dout, dpix, didx, rows, cols, 1.0f / 255.0f, gk_step_value(0), 1);
    float *out = host_from(dout, (size_t)rows * cols * 4);
    double *ref = malloc((size_t)rows * cols * 8);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            ref[r * cols + c] = pix[idx[r] * cols + c] / 255.0;
    expect_close("gather_rows_u8", out, ref, (size_t)rows * cols, TOL);

    size_t n = 123457;
    float *x = rand_vec(n, 0, 1);
    double want = 1.0;
    for (size_t i = 0; i < n; i++)
        want += x[i];
    float one = 1.0f;
    float *dx = dev_from(x, n * 4), *dacc = dev_from(&one, 4);
    be->ops->sum(be, dacc, dx, n);
    float *got = host_from(dacc, 4);
    expect_close("sum", got, &want, 1, TOL);
    free(got);

    float *y = rand_vec(n, -1, 1);
    double *ry = malloc(n * 8);
    for (size_t i = 0; i < n; i++)
        ry[i] = y[i] + 0.25 * x[i];
    float *dy = dev_from(y, n * 4);
    be->ops->axpy(be, dy, dx, n, 0.25f);
    got = host_from(dy, n * 4);
    expect_close("axpy", got, ry, n, TOL);

    be->ops->free(be, dpix);
    be->ops->free(be, didx);
    be->ops->free(be, dout);
    be->ops->free(be, dx);
    be->ops->free(be, dacc);
    be->ops->free(be, dy);
    free(pix);
    free(out);
    free(ref);
    free(x);
    free(y);
    free(ry);
    free(got);
}

static void test_clip_row_norms(void **state)
{
    (void)state;
    int rows = 5, cols = 700;
    float *w = rand_vec((size_t)rows * cols, -0.1f, 0.1f);
    for (int c = 0; c < cols; c++)
        w[2 * cols + c] *= 0.01f; /* a row already inside the ball */
    double *ref = malloc((size_t)rows * cols * sizeof(double));
    for (int r = 0; r < rows; r++) {
        double sq = 0;
        for (int c = 0; c < cols; c++)
            sq += (double)w[r * cols + c] * w[r * cols + c];
        double n = sqrt(sq), scale = fmin(n, 1.0) / (1e-7 + n);
        for (int c = 0; c < cols; c++)
            ref[r * cols + c] = w[r * cols + c] * scale;
    }
    float *d = dev_from(w, (size_t)rows * cols * 4);
    be->ops->clip_row_norms(be, d, rows, cols, 1.0f);
    float *got = host_from(d, (size_t)rows * cols * 4);
    expect_close("clip_row_norms", got, ref, (size_t)rows * cols, TOL);
    be->ops->free(be, d);
    free(w);
    free(ref);
    free(got);
}

static void test_mark_nonfinite(void **state)
{
    (void)state;
    float acc[8] = {1, 2, 3, 4, 5, 6, 0, 0};
    float *d = dev_from(acc, sizeof acc);
    be->ops->mark_nonfinite(be, d, 6, 6, gk_step_value(3)); /* all finite: no mark */
    float *h = host_from(d, sizeof acc);
    assert_true(h[6] == 0.0f);
    free(h);
    acc[2] = INFINITY;
    be->ops->upload(be, d, acc, sizeof acc);
    be->ops->mark_nonfinite(be, d, 6, 6, gk_step_value(4));
    be->ops->mark_nonfinite(be, d, 6, 6, gk_step_value(5)); /* the first mark stays */
    h = host_from(d, sizeof acc);
    assert_true(h[6] == 4.0f);
    free(h);
    be->ops->free(be, d);
}

/* ---- copy, and empty shapes (backend.h) ---------------------------------- */

static void test_copy(void **state)
{
    (void)state;
    /* large enough for several blocks of a GPU copy, odd so no vector width divides it */
    size_t n = 1000003;
    float *x = rand_vec(n, -3, 3);
    float *dx = dev_from(x, n * 4), *dy = be->ops->alloc(be, n * 4 + 4);
    be->ops->fill(be, dy, n + 1, -7.0f);
    be->ops->copy(be, dy, dx, n * 4);
    float *got = host_from(dy, n * 4 + 4);
    expect_exact("copy", got, x, n);
    assert_true(got[n] == -7.0f);     /* nothing past the bytes asked for */
    be->ops->copy(be, dy, dx + 1, 0); /* zero bytes: nothing */
    free(got);
    got = host_from(dy, 4);
    assert_true(got[0] == x[0]);
    assert_null(gk_backend_error(be));
    be->ops->free(be, dx);
    be->ops->free(be, dy);
    free(x);
    free(got);
}

/* Every op with an empty shape returns without touching memory or failing. */
static void test_empty_shapes(void **state)
{
    (void)state;
    enum { N = 64 };
    float sentinel[N];
    for (int i = 0; i < N; i++)
        sentinel[i] = 0.5f + (float)i;
    float *a = dev_from(sentinel, sizeof sentinel), *b = dev_from(sentinel, sizeof sentinel);
    float *c = dev_from(sentinel, sizeof sentinel), *d = dev_from(sentinel, sizeof sentinel);
    int32_t *arg = be->ops->alloc(be, N * sizeof(int32_t));
    const gk_backend_ops *o = be->ops;
    gk_rng rng = {1, GK_PURPOSE_DROPOUT, gk_step_value(0)};
    gk_adam hp = {{1e-3, 1.0, 0.0}, 0.9f, 0.999f, 1e-8f, 0.0f, gk_step_value(1)};
    gk_lr lr = {0.1, 1.0, 0.0};
    gk_momentum mom = {0.5, 0.7, 0};
    for (int dim = 0; dim < 3; dim++) { /* m, n or k of 0 */
        int m = dim == 0 ? 0 : 4, nn = dim == 1 ? 0 : 4, k = dim == 2 ? 0 : 4;
        o->sgemm(be, false, false, m, nn, k, 1.0f, a, 4, b, 4, 0.0f, c, 4);
    }
    o->bias_add(be, c, a, 0, 4);
    o->bias_add(be, c, a, 4, 0);
    o->bias_relu(be, c, a, b, 0, 4, 0.0f);
    o->relu_forward(be, c, a, 0, 0.0f);
    o->relu_backward(be, c, a, b, 0, 0.0f);
    o->sigmoid_forward(be, c, a, 0);
    o->sigmoid_backward(be, c, a, b, 0);
    o->maxout_forward(be, c, arg, a, 0, 4, 2);
    o->bias_maxout(be, c, arg, a, b, 0, 4, 2);
    o->maxout_backward(be, c, NULL, a, b, arg, 0, 4, 2, false);
    o->linear1_backward(be, c, NULL, NULL, a, b, d, 0, 4, false);
    o->linear1_backward(be, c, NULL, NULL, a, b, d, 4, 0, false);
    o->dropout_forward(be, c, d, a, 0, 0.5f, rng);
    o->dropout_backward(be, c, a, b, 0);
    o->sigmoid_bce(be, c, d, a, 0, 1.0f, 1.0f); /* acc (d) must not turn NaN */
    o->softmax_forward(be, c, a, 0, 4);
    o->softmax_forward(be, c, a, 4, 0);
    o->softmax_ce(be, c, d, a, arg, 0, 4, 1.0f);
    o->softmax_ce(be, c, d, a, arg, 4, 0, 1.0f); /* no class: label 0 is not checked */
    o->adam(be, c, a, b, d, 0, hp);
    o->sgd_momentum(be, c, a, b, 0, lr, gk_step_value(1), mom, gk_step_value(0));
    o->fill_normal(be, c, 0, rng, 0.0f, 1.0f);
    o->fill_uniform(be, c, 0, rng, 0.0f, 1.0f);
    o->fill(be, c, 0, 9.0f);
    o->axpy(be, c, a, 0, 2.0f);
    o->ema_update(be, c, a, 0, 0.9, gk_step_value(1));
    o->clip_row_norms(be, c, 0, 4, 1.0f);
    o->mark_nonfinite(be, d, 0, 1, gk_step_value(3));
    o->sum(be, d, a, 0); /* adds the sum of nothing */
    o->copy(be, c, a, 0);
    float *hc = host_from(c, sizeof sentinel), *hd = host_from(d, sizeof sentinel);
    expect_exact("ops on empty shapes (output)", hc, sentinel, N);
    expect_exact("ops on empty shapes (accumulators)", hd, sentinel, N);
    free(hc);
    /* an empty sum: bias_grad over 0 rows sets db = 0, or leaves it when accumulating */
    o->bias_grad(be, d, a, 0, 4, true);
    hd = (free(hd), host_from(d, sizeof sentinel));
    expect_exact("bias_grad over 0 rows, accumulating", hd, sentinel, N);
    o->bias_grad(be, d, a, 0, 4, false);
    free(hd);
    hd = host_from(d, sizeof sentinel);
    const float zeros[4] = {0, 0, 0, 0};
    expect_exact("bias_grad over 0 rows", hd, zeros, 4);
    expect_exact("bias_grad over 0 rows (past cols)", hd + 4, sentinel + 4, N - 4);
    assert_null(gk_backend_error(be));
    free(hd);
    void *dev[] = {a, b, c, d, arg};
    for (size_t i = 0; i < 5; i++)
        be->ops->free(be, dev[i]);
}

/* ---- runner ------------------------------------------------------------- */

int main(void)
{
    const struct CMUnitTest backend_tests[] = {
        cmocka_unit_test(test_sgemm),
        cmocka_unit_test(test_bias),
        cmocka_unit_test(test_linear1_backward),
        cmocka_unit_test(test_bias_relu),
        cmocka_unit_test(test_bias_maxout),
        cmocka_unit_test(test_relu_sigmoid),
        cmocka_unit_test(test_maxout),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_sigmoid_bce),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_softmax_ce),
        cmocka_unit_test(test_softmax_ce_gradient),
        cmocka_unit_test(test_softmax_ce_bad_label),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_sgd_momentum),
        cmocka_unit_test(test_fills),
        cmocka_unit_test(test_gather_sum_axpy),
        cmocka_unit_test(test_mark_nonfinite),
        cmocka_unit_test(test_clip_row_norms),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_empty_shapes),
    };
    const struct CMUnitTest shared_tests[] = {cmocka_unit_test(test_philox_known_answers)};
    int failed = cmocka_run_group_tests_name("elementwise", shared_tests, NULL, NULL);
    failed +=
        run_on_each_backend("ops", backend_tests, sizeof backend_tests / sizeof backend_tests[0]);
    return failed ? 1 : 0;
}
