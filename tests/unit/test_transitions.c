/*
 * tests/unit/test_transitions.c — the run state machine of requests
 * (run_transition in daemon/runs.c) on its own: every state × action ×
 * (held by the worker or not) × (epochs left or not) against the table the
 * README and daemon/registry_internal.h state.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon/registry_internal.h"

/* The documented table, written out independently of runs.c. */
static run_state expected(run_state from, run_action a, bool active, bool left)
{
    if (a == RUN_ACTION_PAUSE && (from == RUN_QUEUED || from == RUN_RUNNING))
        return RUN_PAUSED;
    if (a == RUN_ACTION_STOP && (from == RUN_QUEUED || from == RUN_RUNNING || from == RUN_PAUSED))
        return RUN_STOPPED;
    if (a == RUN_ACTION_RESUME && from == RUN_PAUSED)
        return active ? RUN_RUNNING : RUN_QUEUED;
    if (a == RUN_ACTION_RESUME && from == RUN_COMPLETED && left && !active)
        return RUN_QUEUED;
    return from; /* refused */
}

static void test_every_case(void **state)
{
    (void)state;
    int allowed = 0;
    for (int s = 0; s < RUN_STATE_COUNT; s++)
        for (int a = RUN_ACTION_PAUSE; a <= RUN_ACTION_STOP; a++)
            for (int active = 0; active < 2; active++)
                for (int left = 0; left < 2; left++) {
                    run_state got = run_transition((run_state)s, (run_action)a, active, left);
                    run_state want = expected((run_state)s, (run_action)a, active, left);
                    if (got != want)
                        fail_msg("%s from %s (active %d, epochs left %d): got %s, want %s",
                                 a == 0   ? "pause"
                                 : a == 1 ? "resume"
                                          : "stop",
                                 state_names[s], active, left, state_names[got], state_names[want]);
                    allowed += got != (run_state)s;
                }
    /* pause: 2 states × 4 cases; stop: 3 × 4; resume: paused × 4, completed once */
    assert_int_equal(allowed, 8 + 12 + 4 + 1);
}

/* Nothing ever leaves a final state by a request except a completed run with epochs left. */
static void test_final_states(void **state)
{
    (void)state;
    for (int a = RUN_ACTION_PAUSE; a <= RUN_ACTION_STOP; a++)
        for (int active = 0; active < 2; active++) {
            assert_int_equal(run_transition(RUN_STOPPED, (run_action)a, active, true), RUN_STOPPED);
            assert_int_equal(run_transition(RUN_FAILED, (run_action)a, active, true), RUN_FAILED);
        }
    assert_int_equal(run_transition(RUN_COMPLETED, RUN_ACTION_RESUME, false, false), RUN_COMPLETED);
    assert_int_equal(run_transition(RUN_COMPLETED, RUN_ACTION_RESUME, true, true), RUN_COMPLETED);
    assert_int_equal(run_transition(RUN_COMPLETED, RUN_ACTION_RESUME, false, true), RUN_QUEUED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_case),
        cmocka_unit_test(test_final_states),
    };
    return cmocka_run_group_tests_name("transitions", tests, NULL, NULL);
}
