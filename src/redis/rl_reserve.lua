-- rl_reserve.lua - not written yet (placeholder)
return 0
