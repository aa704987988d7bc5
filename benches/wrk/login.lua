-- wrk: POST /login with the bench account's correct password (argon2 on every request).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"bench-password-1"}'
