//! Just enough of a Rust lexer to find paths: identifiers, `::` and single punctuation, each
//! with its line. Comments, string and character literals, numbers and lifetimes are dropped,
//! so a `crate::x` in a doc comment or a message is not an import.

/// One token of interest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Punct(char),
}

#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub line: u32,
}

impl Token {
    pub fn is_ident(&self, s: &str) -> bool {
        matches!(&self.tok, Tok::Ident(i) if i == s)
    }

    pub fn is_punct(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }
}

/// The tokens of `src`, comments and literals removed.
pub fn tokens(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let (mut i, mut line, mut out) = (0, 1u32, Vec::new());
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            i = block_comment(&c, i, &mut line);
        } else if let Some(end) = raw_string(&c, i, &mut line) {
            i = end;
        } else if ch == '"' || (ch == 'b' && at(i + 1) == '"') {
            i = string(&c, i + usize::from(ch == 'b'), &mut line);
        } else if ch == '\'' || (ch == 'b' && at(i + 1) == '\'') {
            i = quote(&c, i + usize::from(ch == 'b'));
        } else if ch == 'r' && at(i + 1) == '#' && is_ident_start(at(i + 2)) {
            // A raw identifier, `r#type`: the name is what follows.
            let end = ident_end(&c, i + 2);
            out.push(Token {
                tok: Tok::Ident(c[i + 2..end].iter().collect()),
                line,
            });
            i = end;
        } else if is_ident_start(ch) {
            let end = ident_end(&c, i);
            out.push(Token {
                tok: Tok::Ident(c[i..end].iter().collect()),
                line,
            });
            i = end;
        } else if ch.is_ascii_digit() {
            i = ident_end(&c, i);
        } else if ch == ':' && at(i + 1) == ':' {
            out.push(Token {
                tok: Tok::Sep,
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(ch),
                line,
            });
            i += 1;
        }
    }
    out
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn ident_end(c: &[char], mut i: usize) -> usize {
    while i < c.len() && (c[i] == '_' || c[i].is_alphanumeric()) {
        i += 1;
    }
    i
}

/// Past the end of the (nesting) block comment starting at `i`.
fn block_comment(c: &[char], mut i: usize, line: &mut u32) -> usize {
    let mut depth = 0;
    while i < c.len() {
        if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            *line += u32::from(c[i] == '\n');
            i += 1;
        }
    }
    i
}

/// Past the end of the string whose opening quote is at `i`.
fn string(c: &[char], mut i: usize, line: &mut u32) -> usize {
    i += 1;
    while i < c.len() && c[i] != '"' {
        if c[i] == '\\' {
            // An escape: its second character may be a line break (a continued line).
            i += 1;
        }
        *line += u32::from(c.get(i) == Some(&'\n'));
        i += 1;
    }
    i + 1
}

/// A raw string (`r"…"`, `br#"…"#`) starting at `i`: past its end, or `None` if there is none.
fn raw_string(c: &[char], i: usize, line: &mut u32) -> Option<usize> {
    let mut j = i;
    if c.get(j) == Some(&'b') {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = c[j..].iter().take_while(|&&x| x == '#').count();
    j += hashes;
    if c.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < c.len() {
        if c[j] == '"'
            && c[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&x| x == '#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        *line += u32::from(c[j] == '\n');
        j += 1;
    }
    Some(j)
}

/// A character literal or a lifetime at `i`: past its end.
fn quote(c: &[char], i: usize) -> usize {
    if c.get(i + 1) == Some(&'\\') {
        // An escaped character (`'\''`, `'\n'`, `'\u{…}'`): up to the closing quote.
        let mut j = i + 3;
        while j < c.len() && c[j] != '\'' {
            j += 1;
        }
        j + 1
    } else if c.get(i + 2) == Some(&'\'') {
        i + 3
    } else {
        // A lifetime or a label: dropped with its name.
        ident_end(c, i + 1)
    }
}

/// `tokens` without the items under `#[cfg(test)]` (a test-only import is not a dependency of
/// the code). A file whose first attribute is `#![cfg(test)]` is all test code.
pub fn without_tests(t: Vec<Token>) -> Vec<Token> {
    if t.len() >= 8 && t[0].is_punct('#') && t[1].is_punct('!') && is_cfg_test(&t[2..]) {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        if t[i].is_punct('#') && is_cfg_test(&t[i + 1..]) {
            i = item_end(&t, i + 7);
        } else {
            out.push(t[i].clone());
            i += 1;
        }
    }
    out
}

/// Whether `t` starts with `[cfg(test)]`.
fn is_cfg_test(t: &[Token]) -> bool {
    t.len() >= 6
        && t[0].is_punct('[')
        && t[1].is_ident("cfg")
        && t[2].is_punct('(')
        && t[3].is_ident("test")
        && t[4].is_punct(')')
        && t[5].is_punct(']')
}

/// Past the end of the item starting at `i` (its other attributes included): its `;` or the
/// `}` closing its first top-level block.
fn item_end(t: &[Token], mut i: usize) -> usize {
    let mut depth = 0i32;
    while i < t.len() {
        match &t[i].tok {
            Tok::Punct('(' | '[') => depth += 1,
            Tok::Punct(')' | ']') => depth -= 1,
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            Tok::Punct(';') if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(src: &str) -> Vec<String> {
        without_tests(tokens(src))
            .into_iter()
            .filter_map(|t| match t.tok {
                Tok::Ident(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn comments_strings_and_lifetimes_are_dropped() {
        let src = "// crate::a\n/* crate::b /* nested */ */ fn f<'a>(x: &'a str) -> char {\n\
                   let _ = \"crate::c\"; let _ = r#\"crate::\"d\"#; let _ = b'x'; '\\n' }";
        assert_eq!(
            idents(src),
            ["fn", "f", "x", "str", "char", "let", "_", "let", "_", "let", "_"]
        );
    }

    #[test]
    fn lines_are_counted_through_comments_and_strings() {
        let t = tokens("/*\n*/ \"a\nb\\\n\" r\"\n\" '\\'' x");
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].line, 5);
    }

    #[test]
    fn test_items_are_skipped() {
        let src = "use a;\n#[cfg(test)]\n#[allow(x)]\nmod tests { use b; fn f() { g(); } }\n\
                   #[cfg(test)] use c;\nuse d;";
        assert_eq!(idents(src), ["use", "a", "use", "d"]);
        assert!(idents("#![cfg(test)]\nuse a;").is_empty());
    }
}
