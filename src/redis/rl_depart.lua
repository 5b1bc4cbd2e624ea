-- rl_depart.lua - not written yet (placeholder)
return 0
