#include <stddef.h>
#include "CPlashShims.h"

// commit.h is written by scripts/stamp-commit before a build, and kept out of git.
#if __has_include("commit.h")
#include "commit.h"
#endif

const char *plash_commit(void) {
#ifdef PLASH_COMMIT
    return PLASH_COMMIT;
#else
    return NULL;
#endif
}
