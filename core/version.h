/* version.h — lgrpc's version, one place for every file that states it (the `lgrpc.core.version`
 * field, the user-agent). Keep in step with the rockspec's releases. */
#ifndef LGRPC_VERSION_H
#define LGRPC_VERSION_H
#define LGRPC_VERSION "0.1.0"
#endif
