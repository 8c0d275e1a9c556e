/*
 * tests/fuzz/fuzz_config.c — gan_config_from_json on arbitrary bytes.
 *
 * Whatever parses must validate, print with gan_config_to_json, parse back to
 * an equal config (field by field) and print to the same text again. What
 * does not parse has an error whose message and field (which quote the
 * input) make a valid problem document, the 422 of POST /api/v1/runs
 * (tests/fuzz/fuzz_problem.h).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gan/config.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_problem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every field of the two configs is equal (strings up to their NUL). */
static void check_same(const gan_config *a, const gan_config *b)
{
#define SAME_STR(m) FUZZ_CHECK(strncmp(a->m, b->m, GAN_NAME_MAX) == 0, "%s differs", #m)
#define SAME(m) FUZZ_CHECK(a->m == b->m, "%s differs after a round trip", #m)
    SAME_STR(preset);
    SAME_STR(dataset);
    SAME(batch_size);
    SAME(epochs);
    SAME(latent_dim);
    SAME(g_hidden);
    SAME(g_output);
    SAME(d_units);
    SAME(d_pieces);
    SAME(d_dropout);
    SAME(lr_d);
    SAME(lr_g);
    SAME(beta1);
    SAME(beta2);
    SAME(g_loss);
    SAME(d_steps);
    SAME(seed);
    SAME(sample_every);
    SAME(checkpoint_every);
    SAME(evaluate_every);
    SAME(noise);
    SAME(d_input_dropout);
    SAME(d_final_dropout);
    SAME(g_activation);
    SAME(label_smoothing);
    SAME(g_init_range);
    SAME(d_init_range);
    SAME(optimizer);
    SAME(momentum);
    SAME(momentum_final);
    SAME(momentum_epochs);
    SAME(lr_decay);
    SAME(lr_min);
    SAME(g_ema);
    SAME(device);
#undef SAME
#undef SAME_STR
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* len 0 means "NUL-terminated" to the API; pass the empty input as an empty string. */
    static const char empty[] = "";
    const char *json = size ? (const char *)data : empty;

    gan_config c;
    gan_error err = {{0}, {0}};
    if (gan_config_from_json(&c, json, size, &err) != 0) {
        FUZZ_CHECK(err.message[0] != '\0', "an error without a message");
        fuzz_check_problem(422, "urn:gand:problem:invalid-field", err.field, err.message,
                           "/api/v1/runs");
        return 0;
    }
    FUZZ_CHECK(gan_config_validate(&c, &err) == 0, "a parsed config does not validate: %s",
               err.message);

    char *text = gan_config_to_json(&c);
    FUZZ_CHECK(text != NULL, "gan_config_to_json failed");
    gan_config back;
    FUZZ_CHECK(gan_config_from_json(&back, text, strlen(text), &err) == 0,
               "the printed config does not parse: %s: %s", err.message, text);
    check_same(&c, &back);

    char *again = gan_config_to_json(&back);
    FUZZ_CHECK(again != NULL, "gan_config_to_json failed");
    FUZZ_CHECK(strcmp(text, again) == 0, "printing is not stable:\n%s\n%s", text, again);
    free(again);
    free(text);
    return 0;
}
