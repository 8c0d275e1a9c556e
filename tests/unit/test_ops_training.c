/*
 * tests/unit/test_ops_training.c — the ops as an iteration issues them: those
 * that read their step from a counter block (so a recorded iteration replays
 * with the right values), and finite-difference checks of each layer's
 * backward op, on every backend built in.
 */
#include "ops_fixture.h"

/* ---- ops that read their step from a counter block ----------------------
 * Each op given {counter, offset} must act exactly as with the value
 * counter + offset known when issued; counters_add moves the block.
 */
static void test_step_counters(void **state)
{
    (void)state;
    int64_t start[GK_COUNTERS] = {6, 100, 7, 0, 0, 0, 0, -1};
    int64_t *ctr = dev_from(start, sizeof start);
    gk_counters delta = {{0, 2, 3, 0, 0, 0, 0, 1}};
    be->ops->counters_add(be, ctr, delta);
    be->ops->counters_add(be, ctr, delta);
    int64_t *now = host_from(ctr, sizeof start);
    int64_t want[GK_COUNTERS] = {6, 104, 13, 0, 0, 0, 0, 1};
    assert_memory_equal(now, want, sizeof want);
    free(now);

    /* Philox fills and dropout: step = 104 + 3 */
    size_t n = 4099;
    float *d = be->ops->alloc(be, n * 4), *dm = be->ops->alloc(be, n * 4),
          *dx = be->ops->alloc(be, n * 4);
    gk_rng r = {99, GK_PURPOSE_NOISE_G, {ctr + 1, 3}};
    be->ops->fill_normal(be, d, n, r, 0.0f, 1.0f);
    float *x = host_from(d, n * 4);
    for (size_t i = 0; i < n; i++)
        assert_true(x[i] == gk_philox_normal(99, GK_PURPOSE_NOISE_G, 107, i));
    free(x);
    be->ops->fill_uniform(be, d, n, r, -1.0f, 1.0f);
    x = host_from(d, n * 4);
    for (size_t i = 0; i < n; i++)
        assert_true(x[i] == -1.0f + 2.0f * gk_philox_uniform(99, GK_PURPOSE_NOISE_G, 107, i));
    be->ops->fill(be, dx, n, 1.0f);
    be->ops->dropout_forward(be, d, dm, dx, n, 0.5f, r);
    float *y = host_from(d, n * 4);
    gk_rng fixed = {99, GK_PURPOSE_NOISE_G, gk_step_value(107)};
    be->ops->dropout_forward(be, d, dm, dx, n, 0.5f, fixed);
    free(x);
    x = host_from(d, n * 4);
    expect_exact("dropout_forward with a counter step", y, x, n);
    free(x);
    free(y);

    /* gather: batch (6 + 1) mod 3 = 1 of 3 rows each */
    int cols = 5, rows = 3;
    uint8_t pix[45];
    for (int i = 0; i < 45; i++)
        pix[i] = (uint8_t)i;
    int32_t idx[9] = {8, 7, 6, 5, 4, 3, 2, 1, 0};
    uint8_t *dpix = dev_from(pix, sizeof pix);
    int32_t *didx = dev_from(idx, sizeof idx);
    be->ops->gather_rows_u8(be, d, dpix, didx, rows, cols, 1.0f, (gk_step){ctr, 1}, 3);
    x = host_from(d, (size_t)rows * cols * 4);
    for (int r2 = 0; r2 < rows; r2++)
        for (int c = 0; c < cols; c++)
            assert_true(x[r2 * cols + c] == (float)pix[idx[rows + r2] * cols + c]);
    free(x);

    /* mark_nonfinite: tag = 13 + 1 */
    float acc[4] = {1, NAN, 0, 0};
    float *dacc = dev_from(acc, sizeof acc);
    be->ops->mark_nonfinite(be, dacc, 2, 3, (gk_step){ctr + 2, 1});
    float *hacc = host_from(dacc, sizeof acc);
    assert_true(hacc[3] == 14.0f);
    free(hacc);

    /* Adam with t = 13 + 2 and a decaying lr, against t and lr given directly and float64 */
    size_t m = 3000;
    float *p0 = rand_vec(m, -1, 1), *g = rand_vec(m, -0.1f, 0.1f), *m0 = rand_vec(m, -0.01f, 0.01f),
          *v0 = rand_vec(m, 0.0f, 0.001f);
    float *dp = dev_from(p0, m * 4), *dg = dev_from(g, m * 4), *dmm = dev_from(m0, m * 4),
          *dv = dev_from(v0, m * 4);
    gk_lr lr = {1e-3, 1.01, 1e-5};
    gk_adam hp = {lr, 0.5f, 0.999f, 1e-8f, 0.0f, {ctr + 2, 2}};
    be->ops->adam(be, dp, dg, dmm, dv, m, hp);
    float *pa = host_from(dp, m * 4);
    double *ref = malloc(m * sizeof(double));
    double lr_t = fmax(1e-3 / pow(1.01, 15), 1e-5);
    for (size_t i = 0; i < m; i++) {
        double mt = 0.5 * m0[i] + 0.5 * g[i], vt = 0.999 * v0[i] + 0.001 * (double)g[i] * g[i];
        double denom = sqrt(vt) / sqrt(1 - pow(0.999, 15)) + 1e-8;
        ref[i] = p0[i] - lr_t / (1 - pow(0.5, 15)) * mt / denom;
    }
    expect_close("adam with t from a counter", pa, ref, m, TOL);
    be->ops->upload(be, dp, p0, m * 4);
    be->ops->upload(be, dmm, m0, m * 4);
    be->ops->upload(be, dv, v0, m * 4);
    be->ops->upload(be, dg, g, m * 4); /* the optimisers zero the gradient they read */
    hp.t = gk_step_value(15);
    be->ops->adam(be, dp, dg, dmm, dv, m, hp);
    float *pb = host_from(dp, m * 4);
    expect_exact("adam: counter t vs t", pa, pb, m);
    free(pa);
    free(pb);

    /* SGD at step 104 − 4 = 100: lr = 0.1 / 1.01^100; in epoch 6 − 5 = 1 of a
     * two-epoch ramp 0.5 → 0.7: momentum 0.6 */
    be->ops->upload(be, dp, p0, m * 4);
    be->ops->upload(be, dmm, m0, m * 4);
    be->ops->upload(be, dg, g, m * 4);
    gk_lr sched = {0.1, 1.01, 0.0};
    gk_momentum ramp = {0.5, 0.7, 2};
    be->ops->sgd_momentum(be, dp, dg, dmm, m, sched, (gk_step){ctr + 1, -4}, ramp,
                          (gk_step){ctr + 0, -5});
    pa = host_from(dp, m * 4);
    double lr_s = 0.1 / pow(1.01, 100);
    for (size_t i = 0; i < m; i++)
        ref[i] = p0[i] + (0.6 * m0[i] - lr_s * g[i]);
    expect_close("sgd_momentum with a decayed lr and a ramped momentum", pa, ref, m, TOL);
    free(pa);
    /* past the ramp: final momentum */
    be->ops->upload(be, dp, p0, m * 4);
    be->ops->upload(be, dmm, m0, m * 4);
    be->ops->upload(be, dg, g, m * 4);
    be->ops->sgd_momentum(be, dp, dg, dmm, m, sched, (gk_step){ctr + 1, -4}, ramp,
                          (gk_step){ctr + 0, -3});
    pa = host_from(dp, m * 4);
    for (size_t i = 0; i < m; i++)
        ref[i] = p0[i] + (0.7 * m0[i] - lr_s * g[i]);
    expect_close("sgd_momentum past its ramp", pa, ref, m, TOL);
    free(pa);

    /* moving average at step 3: w = 1 − min(0.9, 4/6) */
    be->ops->upload(be, dp, p0, m * 4);
    be->ops->upload(be, dg, g, m * 4);
    be->ops->ema_update(be, dp, dg, m, 0.9, (gk_step){ctr + 7, 2}); /* 1 + 2 */
    pa = host_from(dp, m * 4);
    for (size_t i = 0; i < m; i++)
        ref[i] = p0[i] + (1.0 - 4.0 / 6.0) * ((double)g[i] - p0[i]);
    expect_close("ema_update", pa, ref, m, TOL);
    free(pa);
    be->ops->upload(be, dp, p0, m * 4);
    be->ops->ema_update(be, dp, dg, m, 0.5, gk_step_value(1000)); /* the decay caps the ramp */
    pa = host_from(dp, m * 4);
    for (size_t i = 0; i < m; i++)
        ref[i] = p0[i] + 0.5 * ((double)g[i] - p0[i]);
    expect_close("ema_update (capped)", pa, ref, m, TOL);
    free(pa);

    void *dev[] = {ctr, d, dm, dx, dpix, didx, dacc, dp, dg, dmm, dv};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        be->ops->free(be, dev[i]);
    void *host[] = {p0, g, m0, v0, ref};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++)
        free(host[i]);
}

/* ---- finite-difference checks of each layer ------------------------------
 * For a layer f and a fixed random weighting w, L(x) = Σ w ⊙ f(x). The
 * backward op applied to w must match (L(x+h) − L(x−h)) / 2h. Points where
 * the one-sided differences disagree sit on a kink (ReLU at 0, maxout ties)
 * and are skipped, as ggml's test-backend-ops does.
 */

typedef double (*layer_loss)(const float *x, size_t n, const float *w);

static size_t fd_units = 3, fd_pieces = 4;

static double loss_relu(const float *x, size_t n, const float *w)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)w[i] * (x[i] > 0 ? x[i] : 0);
    return s;
}

static double loss_sigmoid(const float *x, size_t n, const float *w)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)w[i] / (1.0 + exp(-(double)x[i]));
    return s;
}

static double loss_maxout(const float *x, size_t n, const float *w)
{
    double s = 0;
    size_t outs = n / fd_pieces;
    for (size_t o = 0; o < outs; o++) {
        double best = x[o * fd_pieces];
        for (size_t p = 1; p < fd_pieces; p++)
            best = fmax(best, x[o * fd_pieces + p]);
        s += (double)w[o] * best;
    }
    return s;
}

/* run the backend's backward op for the layer: grad of Σ w ⊙ f(x) w.r.t. x */
static float *layer_grad(const char *layer, const float *x, size_t n, const float *w)
{
    float *dx = dev_from(x, n * 4), *g = be->ops->alloc(be, n * 4), *res;
    if (strcmp(layer, "maxout") == 0) {
        size_t outs = n / fd_pieces;
        float *y = be->ops->alloc(be, outs * 4), *dw = dev_from(w, outs * 4);
        int32_t *arg = be->ops->alloc(be, outs * 4);
        be->ops->maxout_forward(be, y, arg, dx, 1, (int)outs, (int)fd_pieces);
        be->ops->maxout_backward(be, g, NULL, dw, NULL, arg, 1, (int)outs, (int)fd_pieces, false);
        be->ops->free(be, y);
        be->ops->free(be, dw);
        be->ops->free(be, arg);
    } else {
        float *y = be->ops->alloc(be, n * 4), *dw = dev_from(w, n * 4);
        if (strcmp(layer, "relu") == 0) {
            be->ops->relu_forward(be, y, dx, n, 0.0f);
            be->ops->relu_backward(be, g, dw, y, n, 0.0f);
        } else {
            be->ops->sigmoid_forward(be, y, dx, n);
            be->ops->sigmoid_backward(be, g, dw, y, n);
        }
        be->ops->free(be, y);
        be->ops->free(be, dw);
    }
    res = host_from(g, n * 4);
    be->ops->free(be, dx);
    be->ops->free(be, g);
    return res;
}

static void fd_check(const char *layer, layer_loss f, size_t n, size_t nw)
{
    float *x = rand_vec(n, -2, 2), *w = rand_vec(nw, -1, 1);
    float *g = layer_grad(layer, x, n, w);
    const float h = 1e-2f;
    int checked = 0;
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        double l0 = f(x, n, w);
        x[i] = keep + h;
        double lp = f(x, n, w);
        x[i] = keep - h;
        double lm = f(x, n, w);
        x[i] = keep;
        double right = (lp - l0) / h, left = (l0 - lm) / h;
        if (fabs(right - left) > 1e-2 * (1 + fabs(right)) && strcmp(layer, "sigmoid") != 0)
            continue; /* a kink between x−h and x+h */
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - g[i]) > 1e-3 * (1 + fabs(fd))) {
            print_error("%s: d/dx[%zu] = %.6g by backward, %.6g by finite differences\n", layer, i,
                        g[i], fd);
            fail();
        }
        checked++;
    }
    assert_true(checked > (int)n / 2);
    free(x);
    free(w);
    free(g);
}

static void test_layer_gradients(void **state)
{
    (void)state;
    fd_check("relu", loss_relu, 200, 200);
    fd_check("sigmoid", loss_sigmoid, 200, 200);
    fd_check("maxout", loss_maxout, fd_units * fd_pieces * 20, fd_units * 20);
}

/* Linear layer y = x·Wᵀ + b through sgemm: gradient of Σ w ⊙ y w.r.t. W, b, x. */
static void test_linear_gradient(void **state)
{
    (void)state;
    int B = 5, in = 7, out = 4;
    float *x = rand_vec((size_t)B * in, -1, 1), *W = rand_vec((size_t)out * in, -1, 1),
          *b = rand_vec(out, -1, 1), *w = rand_vec((size_t)B * out, -1, 1);
    float *dx = dev_from(x, B * in * 4), *dW = dev_from(W, out * in * 4),
          *ddy = dev_from(w, B * out * 4), *gW = be->ops->alloc(be, out * in * 4),
          *gb = be->ops->alloc(be, out * 4), *gx = be->ops->alloc(be, B * in * 4);
    be->ops->sgemm(be, true, false, out, in, B, 1.0f, ddy, out, dx, in, 0.0f, gW, in);
    be->ops->bias_grad(be, gb, ddy, B, out, false);
    be->ops->sgemm(be, false, false, B, in, out, 1.0f, ddy, out, dW, in, 0.0f, gx, in);
    float *hW = host_from(gW, out * in * 4), *hb = host_from(gb, out * 4),
          *hx = host_from(gx, B * in * 4);
    /* L is linear in each argument, so the central difference is exact up to rounding */
    double *rW = malloc(out * in * 8), *rb = malloc(out * 8), *rx = malloc(B * in * 8);
    const double h = 1e-3;
#define LOSS()                                                                                     \
    ({                                                                                             \
        double s_ = 0;                                                                             \
        for (int r = 0; r < B; r++)                                                                \
            for (int o = 0; o < out; o++) {                                                        \
                double y_ = b[o];                                                                  \
                for (int i = 0; i < in; i++)                                                       \
                    y_ += (double)x[r * in + i] * W[o * in + i];                                   \
                s_ += w[r * out + o] * y_;                                                         \
            }                                                                                      \
        s_;                                                                                        \
    })
#define FD(arr, idx, dst)                                                                          \
    do {                                                                                           \
        float k_ = arr[idx];                                                                       \
        arr[idx] = (float)(k_ + h);                                                                \
        double p_ = LOSS();                                                                        \
        arr[idx] = (float)(k_ - h);                                                                \
        double m_ = LOSS();                                                                        \
        arr[idx] = k_;                                                                             \
        dst = (p_ - m_) / ((double)(float)(k_ + h) - (double)(float)(k_ - h));                     \
    } while (0)
    for (int i = 0; i < out * in; i++)
        FD(W, i, rW[i]);
    for (int i = 0; i < out; i++)
        FD(b, i, rb[i]);
    for (int i = 0; i < B * in; i++)
        FD(x, i, rx[i]);
    expect_close("linear dW", hW, rW, out * in, 1e-8);
    expect_close("linear db", hb, rb, out, 1e-8);
    expect_close("linear dx", hx, rx, B * in, 1e-8);
    void *dev[] = {dx, dW, ddy, gW, gb, gx};
    for (size_t i = 0; i < 6; i++)
        be->ops->free(be, dev[i]);
    void *host[] = {x, W, b, w, hW, hb, hx, rW, rb, rx};
    for (size_t i = 0; i < 10; i++)
        free(host[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_counters),
        cmocka_unit_test(test_layer_gradients),
        cmocka_unit_test(test_linear_gradient),
    };
    return run_on_each_backend("ops_training", tests, sizeof tests / sizeof tests[0]) ? 1 : 0;
}
