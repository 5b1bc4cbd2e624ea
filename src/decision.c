/* decision.c - see decision.h. */
#include "decision.h"

static const char *const decision_names[DECISION_COUNT] = {
    [DECISION_FORWARDED] = "forwarded",
    [DECISION_SHORT_CIRCUIT] = "short_circuit",
    [DECISION_REJECTED] = "rejected",
    [DECISION_REPLAY] = "replay",
    [DECISION_LOCAL] = "local",
    [DECISION_CALLER_GONE] = "caller_gone",
    [DECISION_CUT_OFF] = "cut_off",
    [DECISION_LEARNED_REFUSAL] = "learned_refusal",
};

const char *
decision_name(enum decision d)
{
    return (unsigned)d < DECISION_COUNT ? decision_names[d] : "?";
}
