-- idem_finish.lua - not written yet (placeholder)
return 0
