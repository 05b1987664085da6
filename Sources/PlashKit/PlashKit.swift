// PlashKit: the store, the build cache and the macros (issue 3).
