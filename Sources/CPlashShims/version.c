#include <stddef.h>
#include "CPlashShims.h"

#define PLASH_STRING(x) #x
#define PLASH_EXPAND(x) PLASH_STRING(x)

const char *plash_commit(void) {
#ifdef PLASH_COMMIT
    return PLASH_EXPAND(PLASH_COMMIT);
#else
    return NULL;
#endif
}
