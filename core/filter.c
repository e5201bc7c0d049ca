/* filter.c — transport filters; today only identity. A filter never reads or writes a socket:
 * the loop hands it bytes and moves what it returns. The identity filter has no state. */
#include "filter.h"

static int identity_copy(lgrpc_filter *f, const char *in, size_t n, lgrpc_bytes *out)
{
  (void)f;
  return lgrpc_bytes_append(out, in, n);
}

static lgrpc_filter identity = {
  "identity", identity_copy, identity_copy, 1, NULL, NULL, NULL, NULL, NULL, NULL,
};

lgrpc_filter *lgrpc_filter_identity(void) { return &identity; }
