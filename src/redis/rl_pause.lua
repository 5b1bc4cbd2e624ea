-- rl_pause.lua - not written yet (placeholder)
return 0
