-- win_forget.lua - not written yet (placeholder)
return 0
