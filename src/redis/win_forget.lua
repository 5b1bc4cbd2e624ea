-- win_forget.lua - DELETE /admin/sessions (SPEC section 7): forgets one
-- window entry for every instance.
--
-- KEYS[1]  the entry: <base>win:<sender>:<phone key>
--
-- Reply: 1 if it was there, 0 if not.
return redis.call('DEL', KEYS[1])
