/* server/console_assets.h — the console's files (console/ in the source tree), embedded into
 * the binary at build time by scripts/embed_assets.py as build/gen/console_assets.c. */
#ifndef CLEARMTA_SERVER_CONSOLE_ASSETS_H
#define CLEARMTA_SERVER_CONSOLE_ASSETS_H

#include <stddef.h>

struct server_console_asset {
    const char *path; /* "/index.html" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
};

extern const struct server_console_asset server_console_assets[];
extern const size_t server_console_assets_count;

#endif
