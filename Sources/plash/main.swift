print("plash: not yet")
