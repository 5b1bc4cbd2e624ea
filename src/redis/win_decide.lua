-- win_decide.lua - not written yet (placeholder)
return 0
