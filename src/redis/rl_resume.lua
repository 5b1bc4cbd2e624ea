-- rl_resume.lua - not written yet (placeholder)
return 0
