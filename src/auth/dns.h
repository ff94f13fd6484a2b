/* auth/dns.h — how the callers of the sans-I/O evaluators (DKIM, SPF, DMARC) report a DNS
 * answer: the status of one look-up, and the record types the evaluators ask for. */
#ifndef CLEARMTA_AUTH_DNS_H
#define CLEARMTA_AUTH_DNS_H

/* What a DNS look-up gave: records, no such name, the name without that type, or a failure
 * for now (SERVFAIL, timeout). */
enum auth_dns_status { AUTH_DNS_OK, AUTH_DNS_NXDOMAIN, AUTH_DNS_NODATA, AUTH_DNS_TEMPFAIL };

/* Record types by their DNS numbers; answers are text: TXT strings joined, addresses in
 * inet_ntop form, MX as "PREFERENCE HOST", PTR as the host name. */
enum auth_dns_type {
    AUTH_DNS_A = 1,
    AUTH_DNS_PTR = 12,
    AUTH_DNS_MX = 15,
    AUTH_DNS_TXT = 16,
    AUTH_DNS_AAAA = 28
};

#endif
