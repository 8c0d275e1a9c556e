/*
 * tests/fuzz/fuzz_patch.c — gan_config_patch of arbitrary bytes onto the seed config.
 *
 * On error the config is unchanged, byte for byte. On success it validates, no
 * field outside GAN_F_MUTABLE moved, *changed names exactly the fields whose
 * values differ, and the same patch applied again changes nothing. An error's
 * message and field, which quote the input, make a valid problem document
 * (the PATCH's 422; tests/fuzz/fuzz_problem.h).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gan/config.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_problem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The GAN_F_* bits whose fields differ between a and b. */
static unsigned mutable_diff(const gan_config *a, const gan_config *b)
{
    unsigned d = 0;
    d |= a->batch_size != b->batch_size ? GAN_F_BATCH_SIZE : 0;
    d |= a->epochs != b->epochs ? GAN_F_EPOCHS : 0;
    d |= a->lr_d != b->lr_d ? GAN_F_LR_D : 0;
    d |= a->lr_g != b->lr_g ? GAN_F_LR_G : 0;
    d |= a->beta1 != b->beta1 ? GAN_F_BETA1 : 0;
    d |= a->beta2 != b->beta2 ? GAN_F_BETA2 : 0;
    d |= a->g_loss != b->g_loss ? GAN_F_G_LOSS : 0;
    d |= a->d_steps != b->d_steps ? GAN_F_D_STEPS : 0;
    d |= a->sample_every != b->sample_every ? GAN_F_SAMPLE_EVERY : 0;
    d |= a->checkpoint_every != b->checkpoint_every ? GAN_F_CHECKPOINT_EVERY : 0;
    d |= a->evaluate_every != b->evaluate_every ? GAN_F_EVALUATE_EVERY : 0;
    d |= a->watch_every != b->watch_every ? GAN_F_WATCH_EVERY : 0;
    d |= !gan_watch_equal(&a->watch, &b->watch) ? GAN_F_WATCH : 0;
    return d;
}

/* Copy src's mutable fields into dst. */
static void copy_mutable(gan_config *dst, const gan_config *src)
{
    dst->batch_size = src->batch_size;
    dst->epochs = src->epochs;
    dst->lr_d = src->lr_d;
    dst->lr_g = src->lr_g;
    dst->beta1 = src->beta1;
    dst->beta2 = src->beta2;
    dst->g_loss = src->g_loss;
    dst->d_steps = src->d_steps;
    dst->sample_every = src->sample_every;
    dst->checkpoint_every = src->checkpoint_every;
    dst->evaluate_every = src->evaluate_every;
    dst->watch_every = src->watch_every;
    dst->watch = src->watch;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char empty[] = "";
    const char *json = size ? (const char *)data : empty;

    gan_config c, before;
    gan_error err = {{0}, {0}};
    memset(&c, 0, sizeof c); /* padding too, so that memcmp compares only what a patch writes */
    FUZZ_CHECK(gan_config_preset(&c, "seed", &err) == 0, "no seed preset: %s", err.message);
    memcpy(&before, &c, sizeof c);

    unsigned changed = 0xdeadbeefu;
    if (gan_config_patch(&c, json, size, &changed, &err) != 0) {
        FUZZ_CHECK(memcmp(&c, &before, sizeof c) == 0, "a failed patch changed the config (%s)",
                   err.message);
        FUZZ_CHECK(changed == 0, "a failed patch reports changes 0x%x", changed);
        FUZZ_CHECK(err.message[0] != '\0', "an error without a message");
        fuzz_check_problem(422, "urn:gand:problem:invalid-field", err.field, err.message,
                           "/api/v1/runs/r1");
        return 0;
    }
    FUZZ_CHECK(gan_config_validate(&c, &err) == 0, "a patched config does not validate: %s",
               err.message);
    FUZZ_CHECK((changed & ~GAN_F_MUTABLE) == 0, "changed has bits outside the mutable set: 0x%x",
               changed);
    FUZZ_CHECK(changed == mutable_diff(&before, &c), "changed is 0x%x, the fields that moved 0x%x",
               changed, mutable_diff(&before, &c));
    /* Fixed fields compare as JSON text: struct copies need not keep padding bytes. */
    gan_config fixed = c;
    copy_mutable(&fixed, &before);
    char *want = gan_config_to_json(&before), *got = gan_config_to_json(&fixed);
    FUZZ_CHECK(want && got && strcmp(want, got) == 0, "a patch changed a fixed field:\n%s\n%s",
               want ? want : "(null)", got ? got : "(null)");
    free(want);
    free(got);

    /* A merge patch is idempotent. */
    char *once = gan_config_to_json(&c);
    FUZZ_CHECK(gan_config_patch(&c, json, size, &changed, &err) == 0,
               "a patch that applied once fails the second time: %s", err.message);
    char *twice = gan_config_to_json(&c);
    FUZZ_CHECK(changed == 0 && once && twice && strcmp(once, twice) == 0,
               "the same patch applied twice changes the config again (0x%x)", changed);
    free(once);
    free(twice);
    return 0;
}
