/* reply/bytes.h — the classes of bytes that the reply readers look up rather than compute:
 * explain and the JSON escaper visit every byte of every reply of a log. */
#ifndef CLEARMTA_REPLY_BYTES_H
#define CLEARMTA_REPLY_BYTES_H

#define REPLY_BYTE_SPACE 1u       /* space, TAB, CR, LF */
#define REPLY_BYTE_DIGIT 2u       /* 0-9 */
#define REPLY_BYTE_WORD 4u        /* letters, digits and bytes >= 0x80 (a UTF-8 word goes whole) */
#define REPLY_BYTE_CONTROL 8u     /* a control byte no reply holds: not TAB, CR or LF */
#define REPLY_BYTE_JSON_PLAIN 16u /* printable ASCII but '"' and '\\': as it is in a JSON string */

extern const unsigned char reply_byte_class[256];

#endif
