-- Refusals with the rule's own reply: SPF -all at RCPT (550 5.7.23), then on
-- the same connection a forged From of a DMARC p=reject domain at end of
-- message (550 5.7.1).
-- Run by test/unit/milter-miltertest.test.ts: miltertest -D port=N -s refuse.lua

conn = mt.connect("inet:" .. port .. "@127.0.0.1")
if conn == nil then error("mt.connect() failed") end
if mt.negotiate(conn, nil, nil, nil) ~= nil then error("mt.negotiate() failed") end
if mt.conninfo(conn, "mail.spf-ok.test", "192.0.2.10") ~= nil then error("mt.conninfo() failed") end
if mt.helo(conn, "mail.spf-ok.test") ~= nil then error("mt.helo() failed") end

if mt.mailfrom(conn, "<x@hardfail.test>") ~= nil then error("mt.mailfrom() failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("mail not continued") end
if mt.rcptto(conn, "<bob@dest.test>") ~= nil then error("mt.rcptto() failed") end
if mt.getreply(conn) ~= SMFIR_REPLYCODE then error("SPF fail not refused at RCPT") end
mt.abort(conn)

if mt.mailfrom(conn, "<eve@spf-ok.test>") ~= nil then error("mt.mailfrom() failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("mail not continued") end
if mt.rcptto(conn, "<bob@dest.test>") ~= nil then error("mt.rcptto() failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("rcpt not continued") end
mt.header(conn, "From", "ceo@strict.test")
mt.header(conn, "Subject", "forged")
if mt.eoh(conn) ~= nil then error("mt.eoh() failed") end
if mt.bodystring(conn, "Pay this invoice.\r\n") ~= nil then error("mt.bodystring() failed") end
if mt.eom(conn) ~= nil then error("mt.eom() failed") end
if mt.getreply(conn) ~= SMFIR_REPLYCODE then error("forged From not refused") end
if not mt.eom_check(conn, MT_SMTPREPLY, "550", "5.7.1", "the From domain's DMARC policy says reject") then error("not the rule's reply") end
mt.disconnect(conn)
mt.echo("refuse.lua: ok")
