-- win_get.lua - not written yet (placeholder)
return 0
