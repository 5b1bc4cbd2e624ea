-- win_learn.lua - not written yet (placeholder)
return 0
