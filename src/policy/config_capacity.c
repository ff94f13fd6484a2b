/* policy/config_capacity.c — the capacity directive of clearmta.conf(5) that has options:
 * stress (high and low water marks of the connections, the silence allowed and the
 * connections per address while the server is under stress). */
#include "policy/config_internal.h"


enum { SEEN_HIGH = 1, SEEN_LOW = 2, SEEN_TIMEOUT = 4, SEEN_PER_IP = 8 };

static bool stress_option(struct loader *ld, const char *opt, unsigned *seen, void *ctx)
{
    struct policy_stress_config *st = ctx;
    static const char what[] = "stress";
    static const struct {
        const char *key;
        unsigned bit;
        uint64_t min, max;
        size_t offset;
    } options[] = {
        {"high", SEEN_HIGH, 2, 100, offsetof(struct policy_stress_config, high)},
        {"low", SEEN_LOW, 1, 99, offsetof(struct policy_stress_config, low)},
        {"timeout", SEEN_TIMEOUT, 1, POLICY_TIMEOUT_MAX,
         offsetof(struct policy_stress_config, timeout)},
        {"per_ip", SEEN_PER_IP, 1, POLICY_CONNECTIONS_MAX,
         offsetof(struct policy_stress_config, per_ip)},
    };
    for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
        const char *v = policy_conf_option_value(opt, options[i].key);
        uint64_t n;
        if (v == NULL)
            continue;
        if (!policy_conf_option_once(ld, what, options[i].key, seen, options[i].bit) ||
            !policy_conf_number_option(ld, what, options[i].key, v, false, options[i].min,
                                       options[i].max, &n))
            return false;
        *(unsigned *)((char *)st + options[i].offset) = (unsigned)n;
        return true;
    }
    policy_conf_problem(ld, "%s: unknown option '%s' (high=PERCENT, low=PERCENT, "
                        "timeout=SECONDS, per_ip=N)", what, policy_conf_show(opt).s);
    return false;
}

void policy_capacity_stress(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    (void)d;
    struct policy_stress_config st = ld->c->stress;
    if (!policy_conf_switch(ld, cur, "stress",
                            "[high=PERCENT] [low=PERCENT] [timeout=SECONDS] [per_ip=N]",
                            stress_option, &st, &ld->c->stress.on))
        return;
    if (st.low >= st.high) {
        policy_conf_problem(ld, "stress: low (%u) must be under high (%u), or stress would "
                            "never end", st.low, st.high);
        return;
    }
    st.on = true;
    ld->c->stress = st;
}

void policy_capacity_defaults(struct policy_config *c)
{
    c->stress = (struct policy_stress_config){
        .on = true,
        .high = POLICY_STRESS_HIGH_DEFAULT,
        .low = POLICY_STRESS_LOW_DEFAULT,
        .timeout = POLICY_STRESS_TIMEOUT_DEFAULT,
        .per_ip = POLICY_STRESS_PER_IP_DEFAULT,
    };
    c->session_memory = POLICY_SESSION_MEMORY_DEFAULT;
    c->tls_handshake_timeout = POLICY_TLS_HANDSHAKE_TIMEOUT_DEFAULT;
    c->tls_handshakes_per_second = POLICY_TLS_HANDSHAKES_PER_SECOND_DEFAULT;
}
