/*
 * tests/unit/ops_softmax_cases.h — test_ops' cases of softmax_forward and
 * softmax_ce, kept apart for length; included by test_ops.c after its helpers
 * (it uses the fixture's `be` and the reference helpers defined before it).
 */
/* ---- softmax and softmax + cross-entropy ------------------------------- */

/* Row r of x (rows × cols) as probabilities in double, max-subtracted; log Σ exp too. */
static double ref_softmax_row(const float *x, int cols, double *p)
{
    double m = x[0];
    for (int c = 1; c < cols; c++)
        m = fmax(m, x[c]);
    double s = 0;
    for (int c = 0; c < cols; c++)
        s += exp((double)x[c] - m);
    for (int c = 0; c < cols; c++)
        p[c] = exp((double)x[c] - m) / s;
    return m + log(s);
}

static void run_softmax(int rows, int cols)
{
    size_t n = (size_t)rows * (size_t)cols;
    float *x = rand_vec(n, -8, 8);
    /* row 0: huge logits, which overflow exp unless the max is subtracted */
    for (int c = 0; c < cols; c++)
        x[c] = c == 0 ? 1000.0f : (c == 1 ? -1000.0f : 990.0f);
    double *ref = malloc(n * sizeof(double));
    for (int r = 0; r < rows; r++)
        ref_softmax_row(x + (size_t)r * cols, cols, ref + (size_t)r * cols);
    float *dx = dev_from(x, n * 4), *dy = be->ops->alloc(be, n * 4);
    be->ops->softmax_forward(be, dy, dx, rows, cols);
    float *y = host_from(dy, n * 4);
    char what[64];
    snprintf(what, sizeof what, "softmax_forward(%dx%d)", rows, cols);
    expect_close(what, y, ref, n, TOL);
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < cols; c++) {
            assert_true(y[(size_t)r * cols + c] >= 0.0f && y[(size_t)r * cols + c] <= 1.0f);
            s += y[(size_t)r * cols + c];
        }
        assert_true(fabs(s - 1.0) < 1e-5);
    }
    be->ops->softmax_forward(be, dx, dx, rows, cols); /* in place */
    float *y2 = host_from(dx, n * 4);
    expect_exact("softmax_forward in place", y2, y, n);
    be->ops->free(be, dx);
    be->ops->free(be, dy);
    free(x);
    free(ref);
    free(y);
    free(y2);
}

static void test_softmax(void **state)
{
    (void)state;
    run_softmax(37, 10);
    run_softmax(5, 1);     /* one class: probability 1 */
    run_softmax(300, 130); /* more columns than a warp has lanes */
    /* above the CPU's threading threshold; on a GPU beyond one wave of warps */
    run_softmax(on_gpu() ? 200003 : 1100, on_gpu() ? 10 : 1000);
}

/*
 * The loss of backend.h's formula in double (each row's loss capped at
 * −log FLT_MIN), its gradient (grad_scale · (p − onehot) / rows) and the
 * fraction of rows whose arg-max logit, ties to the lowest index, is the label.
 */
static double ref_softmax_ce(const float *x, const int32_t *labels, int rows, int cols,
                             double grad_scale, double *grad, double *accuracy)
{
    double loss = 0, correct = 0, *p = malloc((size_t)cols * sizeof(double));
    for (int r = 0; r < rows; r++) {
        const float *row = x + (size_t)r * cols;
        double lse = ref_softmax_row(row, cols, p);
        loss += fmin(lse - row[labels[r]], -log((double)FLT_MIN));
        int arg = 0;
        for (int c = 1; c < cols; c++)
            if (row[c] > row[arg])
                arg = c;
        correct += arg == labels[r];
        for (int c = 0; c < cols && grad; c++)
            grad[(size_t)r * cols + c] = grad_scale * (p[c] - (c == labels[r])) / rows;
    }
    free(p);
    *accuracy = correct / rows;
    return loss / rows;
}

static int32_t *rand_labels(int rows, int cols)
{
    int32_t *l = malloc((size_t)rows * sizeof(int32_t));
    for (int r = 0; r < rows; r++)
        l[r] = (int32_t)(frand(0, (float)cols)) % cols;
    return l;
}

static void run_softmax_ce(int rows, int cols)
{
    size_t n = (size_t)rows * (size_t)cols;
    float *x = rand_vec(n, -4, 4);
    int32_t *labels = rand_labels(rows, cols);
    if (cols >= 4 && rows >= 4) {
        for (int c = 0; c < cols; c++) {
            x[c] = 0.5f;        /* row 0: all tied, label 0: the lowest index wins, right */
            x[cols + c] = 0.5f; /* row 1: all tied, label 3: wrong */
            x[2 * cols + c] = c == 1 ? 200.0f : 0.0f; /* row 2: p[label] ≈ e^-400, capped */
            x[3 * cols + c] = c == 2 ? 3.0f : 1.0f;   /* row 3: a clear win for label 2 */
        }
        labels[0] = 0;
        labels[1] = 3;
        labels[2] = 0;
        x[2 * cols] = -200.0f;
        labels[3] = 2;
    }
    const float scale = 0.5f;
    double *ref = malloc(n * sizeof(double)), accuracy;
    double loss = ref_softmax_ce(x, labels, rows, cols, scale, ref, &accuracy);
    if (cols >= 4 && rows >= 4)
        assert_true(loss * rows > -log((double)FLT_MIN)); /* row 2 alone: the cap */
    float acc0[2] = {0.5f, 0.25f};
    float *dx = dev_from(x, n * 4), *dg = be->ops->alloc(be, n * 4), *dacc = dev_from(acc0, 8);
    int32_t *dl = dev_from(labels, (size_t)rows * 4);
    be->ops->softmax_ce(be, dg, dacc, dx, dl, rows, cols, scale);
    float *acc = host_from(dacc, 8), *g = host_from(dg, n * 4);
    double want_loss = 0.5 + loss, want_acc = 0.25 + accuracy;
    char what[80];
    snprintf(what, sizeof what, "softmax_ce(%dx%d) loss", rows, cols);
    expect_close(what, &acc[0], &want_loss, 1, TOL);
    snprintf(what, sizeof what, "softmax_ce(%dx%d) accuracy", rows, cols);
    expect_close(what, &acc[1], &want_acc, 1, TOL);
    snprintf(what, sizeof what, "softmax_ce(%dx%d) dlogit", rows, cols);
    expect_close(what, g, ref, n, TOL);
    /* forward only: the same sums, bit for bit */
    be->ops->upload(be, dacc, acc0, 8);
    be->ops->softmax_ce(be, NULL, dacc, dx, dl, rows, cols, scale);
    float *acc2 = host_from(dacc, 8);
    expect_exact("softmax_ce without dlogit", acc2, acc, 2);
    assert_null(gk_backend_error(be));
    be->ops->free(be, dx);
    be->ops->free(be, dg);
    be->ops->free(be, dacc);
    be->ops->free(be, dl);
    void *host[] = {x, labels, ref, acc, g, acc2};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++)
        free(host[i]);
}

static void test_softmax_ce(void **state)
{
    (void)state;
    run_softmax_ce(50, 10);
    run_softmax_ce(7, 1);   /* one class: loss 0, gradient 0, every row right */
    run_softmax_ce(64, 37); /* more columns than a warp has lanes */
    run_softmax_ce(on_gpu() ? 20011 : 1000, 10); /* on a GPU: warps go round more than once */
}

/* The backend's own loss (forward only) at x; the op's gradient must be its derivative. */
static double backend_ce_loss(const float *x, const int32_t *dl, int rows, int cols)
{
    float zero[2] = {0, 0};
    float *dx = dev_from(x, (size_t)rows * cols * 4), *dacc = dev_from(zero, 8);
    be->ops->softmax_ce(be, NULL, dacc, dx, dl, rows, cols, 1.0f);
    float *acc = host_from(dacc, 8);
    double loss = acc[0];
    be->ops->free(be, dx);
    be->ops->free(be, dacc);
    free(acc);
    return loss;
}

/* Finite differences of the op's loss against its dlogit, with a grad_scale that flips it. */
static void test_softmax_ce_gradient(void **state)
{
    (void)state;
    int rows = 6, cols = 5;
    size_t n = (size_t)rows * cols;
    float *x = rand_vec(n, -2, 2);
    int32_t *labels = rand_labels(rows, cols);
    int32_t *dl = dev_from(labels, (size_t)rows * 4);
    float zero[2] = {0, 0};
    float *dx = dev_from(x, n * 4), *dg = be->ops->alloc(be, n * 4), *dacc = dev_from(zero, 8);
    const float scale = -2.0f;
    be->ops->softmax_ce(be, dg, dacc, dx, dl, rows, cols, scale);
    float *g = host_from(dg, n * 4);
    const float h = 1e-2f;
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + h;
        double lp = backend_ce_loss(x, dl, rows, cols);
        x[i] = keep - h;
        double lm = backend_ce_loss(x, dl, rows, cols);
        x[i] = keep;
        double fd = scale * (lp - lm) / ((double)(keep + h) - (double)(keep - h));
        if (fabs(fd - g[i]) > 1e-4 + 1e-3 * fabs(fd)) {
            print_error("softmax_ce on %s: d/dlogit[%zu] = %.6g by the op, %.6g by finite "
                        "differences\n",
                        be->ops->name, i, g[i], fd);
            fail();
        }
    }
    be->ops->free(be, dl);
    be->ops->free(be, dx);
    be->ops->free(be, dg);
    be->ops->free(be, dacc);
    free(x);
    free(labels);
    free(g);
}

/*
 * A label outside 0..cols−1 is the sticky error, naming the lowest bad row:
 * at once on the CPU (which then writes nothing), at the next wait on CUDA.
 * The failure poisons nothing, so the test clears it and the op runs again.
 */
static void test_softmax_ce_bad_label(void **state)
{
    (void)state;
    int rows = 8, cols = 10;
    size_t n = (size_t)rows * cols;
    float *x = rand_vec(n, -1, 1), sentinel[2] = {0.5f, 0.25f};
    for (int bad = 0; bad < 2; bad++) {
        int32_t *labels = rand_labels(rows, cols);
        labels[5] = -1;
        labels[3] = bad ? cols : INT32_MAX;
        float *dx = dev_from(x, n * 4), *dacc = dev_from(sentinel, 8), *dg = dev_from(x, n * 4);
        int32_t *dl = dev_from(labels, (size_t)rows * 4);
        be->ops->softmax_ce(be, dg, dacc, dx, dl, rows, cols, 1.0f);
        if (!on_gpu()) { /* at once, and nothing written */
            assert_non_null(gk_backend_error(be));
            be->ops->synchronize(be);
            char saved[sizeof be->error];
            memcpy(saved, be->error, sizeof saved);
            be->error[0] = '\0';
            float *acc = host_from(dacc, 8), *g = host_from(dg, n * 4);
            expect_exact("softmax_ce with a bad label: acc", acc, sentinel, 2);
            expect_exact("softmax_ce with a bad label: dlogit", g, x, n);
            free(acc);
            free(g);
            memcpy(be->error, saved, sizeof saved);
        }
        be->ops->synchronize(be);
        const char *e = gk_backend_error(be);
        assert_non_null(e);
        if (!strstr(e, "softmax_ce: row 3 has label")) {
            print_error("bad label on %s reported as '%s'\n", be->ops->name, e);
            fail();
        }
        be->error[0] = '\0';
        /* reported once: the next wait is clean, and good labels work again */
        labels[3] = labels[5] = 1;
        be->ops->upload(be, dl, labels, (size_t)rows * 4);
        be->ops->softmax_ce(be, dg, dacc, dx, dl, rows, cols, 1.0f);
        be->ops->synchronize(be);
        assert_null(gk_backend_error(be));
        be->ops->free(be, dx);
        be->ops->free(be, dacc);
        be->ops->free(be, dg);
        be->ops->free(be, dl);
        free(labels);
    }
    free(x);
}
