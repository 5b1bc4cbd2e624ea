/* text.h - what a message may echo: one line of printable text.
 *
 * Messages (config errors, log lines) echo input: a file name, a key, a
 * client name. Printable text is valid UTF-8 without a C0 or C1 control,
 * DEL, a line or paragraph separator, a bidirectional control or a BOM
 * (those make a line display as something it is not). Pure functions, no
 * state. */
#ifndef WAGATE_TEXT_H
#define WAGATE_TEXT_H

#include <stddef.h>

/* 1 if s (n bytes) is printable text. */
int text_printable(const char *s, size_t n);

/* 1 if every byte of s is visible ASCII (0x21..0x7e); 1 for "". */
int text_visible_ascii(const char *s);

/* s as one line of printable text: printable UTF-8 stays, '"' and '\\'
 * get a backslash, every other byte is \xNN. A heap string, the caller
 * frees. */
char *text_escape(const char *s);

/* Formats a message into err like snprintf(); when cut short, never in
 * the middle of a UTF-8 sequence. Returns -1, for "return text_error()". */
int text_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
