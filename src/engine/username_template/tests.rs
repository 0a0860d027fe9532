use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

/// Random bytes 0, 1, 2, ... (wrapping), so `random` and `uuid` are exact:
/// `random 5` is "ABCDE".
struct Counter(u8);

impl RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0; 4];
        self.fill_bytes(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for byte in dst {
            *byte = self.0;
            self.0 = self.0.wrapping_add(1);
        }
    }
}

/// Given bytes, over and over.
struct Bytes(Vec<u8>, usize);

impl RngCore for Bytes {
    fn next_u32(&mut self) -> u32 {
        unimplemented!("templates draw bytes")
    }

    fn next_u64(&mut self) -> u64 {
        unimplemented!("templates draw bytes")
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for byte in dst {
            *byte = self.0[self.1 % self.0.len()];
            self.1 += 1;
        }
    }
}

/// A Monday, day 341 of the year; 1796646896 in Unix seconds.
const NOW: OffsetDateTime = datetime!(2026-12-07 12:34:56.789 UTC);

fn render_with(src: &str, role_name: &str, display_name: &str) -> String {
    let template = Template::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let data = TemplateData {
        role_name,
        display_name,
    };
    template
        .render(&data, NOW, &mut Counter(0))
        .unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn render(src: &str) -> String {
    render_with(src, "my-role", "token")
}

/// Each template renders as given (role "my-role", display name "token").
fn renders(cases: &[(&str, &str)]) {
    for (src, want) in cases {
        assert_eq!(render(src), *want, "{src}");
    }
}

fn parse_error(src: &str) -> ParseError {
    match Template::parse(src) {
        Ok(_) => panic!("{src:?} parsed"),
        Err(e) => e,
    }
}

#[test]
fn text_fields_and_literals() {
    renders(&[
        ("plain text", "plain text"),
        ("a }} b", "a }} b"),
        ("{{.RoleName}}/{{ .DisplayName }}", "my-role/token"),
        ("{{\n.RoleName\n}}", "my-role"),
        (r#"{{ "a\tb\"c\\" }}"#, "a\tb\"c\\"),
        (r#"{{ "\u00e9\x41\101\U0001F600" }}"#, "éAA😀"),
        ("{{ `raw \\n {{ }}` }}", "raw \\n {{ }}"),
        ("{{ `a\r\nb` }}", "a\nb"),
        ("{{ \"}}\" }}", "}}"),
        ("{{ 42 }}", "42"),
        ("{{ -3 }}{{ +4 }}", "-34"),
        ("{{ ((\"x\")) }}", "x"),
        ("x{{/* a comment, even {{ }} */}}y", "xy"),
    ]);
}

#[test]
fn trim_markers_take_white_space_of_the_text_only() {
    renders(&[
        ("a  {{- .RoleName -}}  b", "amy-roleb"),
        ("a \n\t {{- .RoleName }} b", "amy-role b"),
        ("a {{ .RoleName -}} \r\n b", "a my-roleb"),
        ("a {{- /* gone */ -}} b", "ab"),
        ("{{ \" x \" -}} y", " x y"),
        // `{{-3}}` is the number -3, not a trim marker (no space after it).
        ("x {{-3}}", "x -3"),
        ("x {{- 3}}", "x3"),
        ("{{ .RoleName  -}}\n\n  x", "my-rolex"),
        ("line\n{{- .RoleName }}\n", "linemy-role\n"),
    ]);
}

#[test]
fn pipelines_pass_the_value_last() {
    renders(&[
        ("{{ .RoleName | truncate 3 }}", "my-"),
        ("{{ truncate 3 .RoleName }}", "my-"),
        (r#"{{ "abcb" | replace "b" "X" }}"#, "aXcX"),
        (r#"{{ replace "b" "X" "abcb" }}"#, "aXcX"),
        (
            r#"{{ .RoleName | replace "-" "_" | uppercase }}"#,
            "MY_ROLE",
        ),
        // printf's format comes first; the piped value is its last value.
        (r#"{{ .RoleName | printf "%s+%s" "x" }}"#, "x+my-role"),
        ("{{ 3 | random }}", "ABC"),
        ("{{.RoleName|truncate 2|uppercase}}", "MY"),
    ]);
}

#[test]
fn nesting_and_printf() {
    renders(&[
        (
            r#"{{ printf "%s_%s" (.RoleName | truncate 2) (lowercase (uppercase "Ab")) }}"#,
            "my_ab",
        ),
        (r#"{{ printf "%d%%-%s" 7 (random 2) }}"#, "7%-AB"),
        (r#"{{ printf "no verbs" }}"#, "no verbs"),
        // A bare function name as an argument is called with no arguments.
        (
            r#"{{ printf "%s.%s" unix_time unix_time_millis }}"#,
            "1796646896.1796646896789",
        ),
        (
            r#"{{ printf "%s" (printf "<%s>" .DisplayName) }}"#,
            "<token>",
        ),
        (r#"{{ printf "%s" "%d" }}"#, "%d"),
    ]);
}

#[test]
fn random_is_vaults_base62() {
    assert_eq!(render("{{ random 0 }}"), "");
    assert_eq!(render("{{ random 5 }}"), "ABCDE");
    // Batches of n + n/4 bytes; 248 and up are dropped; 61 is '9'.
    let template = Template::parse("{{ random 4 }}").unwrap();
    let data = TemplateData {
        role_name: "r",
        display_name: "d",
    };
    let mut bytes = Bytes(vec![250, 0, 61, 62, 185, 247], 0);
    assert_eq!(template.render(&data, NOW, &mut bytes).unwrap(), "A9A9");
    // The counter's 248..=255 are skipped: 248 bytes give 248 characters.
    let long = render("{{ random 300 }}");
    assert_eq!(&long[..62], std::str::from_utf8(BASE62).unwrap());
    assert_eq!(&long[248..250], "AB");
}

#[test]
fn random_is_unbiased() {
    let template = Template::parse("{{ random 1000 }}").unwrap();
    let data = TemplateData {
        role_name: "r",
        display_name: "d",
    };
    let mut rng = StdRng::seed_from_u64(7);
    let mut counts = [0u32; 128];
    for _ in 0..62 {
        for c in template.render(&data, NOW, &mut rng).unwrap().bytes() {
            counts[usize::from(c)] += 1;
        }
    }
    // 62,000 draws: about 1,000 each; a biased `% 62` over all 256 byte
    // values would give the first 8 characters about 1,210.
    for &c in BASE62 {
        let n = counts[usize::from(c)];
        assert!(
            (880..=1120).contains(&n),
            "{} drawn {n} times",
            char::from(c)
        );
    }
}

/// Both cut bytes, never half a character: the cut moves back to a
/// character boundary, so the result may be shorter than asked.
#[test]
fn truncate_and_truncate_sha256() {
    for (helper, value, n, want) in [
        ("truncate", "abcdef", 3, "abc"),
        ("truncate", "ab", 5, "ab"),
        ("truncate", "abc", 3, "abc"),
        // 'é' is bytes 1..3: a cut at 2 moves back to 1.
        ("truncate", "héllo", 2, "h"),
        ("truncate", "héllo", 3, "hé"),
        ("truncate", "名前", 5, "名"),
        ("truncate_sha256", "short", 9, "short"),
        ("truncate_sha256", "abcdefghij", 10, "abcdefghij"),
        // Keeps n-8 bytes, then sha256("cdefghijkl"), which starts 3615b840.
        ("truncate_sha256", "abcdefghijkl", 10, "ab3615b840"),
        // '€' is bytes 2..5; the cut at 3 moves back to 2, and the hash
        // covers "€defghijk" (starting 588532df).
        ("truncate_sha256", "ab€defghijk", 10, "ab588532df"),
        ("truncate_sha256", "ab€defghijk", 11, "ab588532df"),
    ] {
        let src = format!("{{{{ {value:?} | {helper} {n} }}}}");
        assert_eq!(render(&src), want, "{src}");
    }
    for (helper, n, message) in [
        ("truncate", "0", "truncate's length must be > 0, got 0"),
        ("truncate", "-1", "truncate's length must be > 0, got -1"),
        (
            "truncate_sha256",
            "8",
            "truncate_sha256's length must be > 8 (the hash takes 8), got 8",
        ),
        (
            "truncate_sha256",
            "0",
            "truncate_sha256's length must be > 8 (the hash takes 8), got 0",
        ),
    ] {
        let e = parse_error(&format!("{{{{ .RoleName | {helper} {n} }}}}"));
        assert_eq!(e.message, message);
        assert_eq!(e.offset, 16 + helper.len());
    }
}

#[test]
fn string_helpers() {
    renders(&[
        (r#"{{ "MiXed-Ünï" | uppercase }}"#, "MIXED-ÜNÏ"),
        (r#"{{ "MiXed-Ünï" | lowercase }}"#, "mixed-ünï"),
        (r#"{{ "a.b.c" | replace "." "" }}"#, "abc"),
        // Go's ReplaceAll with an empty FIND inserts between characters.
        (r#"{{ "ab" | replace "" "-" }}"#, "-a-b-"),
        (
            r#"{{ "abc" | sha256 }}"#,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (r#"{{ "hello?" | base64 }}"#, "aGVsbG8/"),
        (r#"{{ "a" | base64 }}"#, "YQ=="),
        ("{{ unix_time }}", "1796646896"),
        ("{{ unix_time_millis }}", "1796646896789"),
        ("{{ uuid }}", "00010203-0405-4607-8809-0a0b0c0d0e0f"),
    ]);
}

#[test]
fn uuids_are_version_4() {
    let template = Template::parse("{{ uuid }}").unwrap();
    let data = TemplateData {
        role_name: "r",
        display_name: "d",
    };
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..200 {
        let id = template.render(&data, NOW, &mut rng).unwrap();
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert_eq!(&id[14..15], "4", "{id}");
        assert!("89ab".contains(&id[19..20]), "{id}");
        assert!(
            id.bytes()
                .all(|b| b == b'-' || (b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        );
    }
}

#[test]
fn timestamp_layouts_as_go_writes_them() {
    for (layout, want) in [
        ("2006-01-02T15:04:05Z07:00", "2026-12-07T12:34:56Z"),
        ("20060102150405", "20261207123456"),
        (
            "2006-01-02 15:04:05.999999999 -0700 MST",
            "2026-12-07 12:34:56.789 +0000 UTC",
        ),
        ("Mon Jan _2 15:04:05 2006", "Mon Dec  7 12:34:56 2026"),
        (
            "Monday, January 2 3:04PM pm",
            "Monday, December 7 12:34PM pm",
        ),
        ("06 1 2 3 4 5 03", "26 12 7 12 34 56 12"),
        (
            "002 __2 .000 ,000000 .9 .99999",
            "341 341 .789 ,789000 .7 .789",
        ),
        ("-07:00 -07 Z0700 Z07", "+00:00 +00 Z Z"),
        // Not elements: `Janet`, `Month`, `.0` before a digit, `7`, `v_`.
        ("Janet Month .01 7 v_", "Janet Month .12 7 v_"),
        // `_2006` is `_` and the year.
        ("x_2006", "x_2026"),
        ("", ""),
    ] {
        assert_eq!(layout::format(layout, NOW), want, "{layout}");
    }
    assert_eq!(render(r#"{{ timestamp "2006-01-02" }}"#), "2026-12-07");
    // `.999` drops a zero fraction with its dot; `.000` keeps it.
    let whole = datetime!(2026-01-02 03:04:05 UTC);
    assert_eq!(layout::format("05.999|05.000|3PM", whole), "05|05.000|3AM");
    // Any instant is written in UTC.
    let east = datetime!(2026-12-07 20:34:56.789 +08:00);
    let data = TemplateData {
        role_name: "r",
        display_name: "d",
    };
    let t = Template::parse(r#"{{ timestamp "15:04 MST" }}"#).unwrap();
    assert_eq!(t.render(&data, east, &mut Counter(0)).unwrap(), "12:34 UTC");
}

#[test]
fn parse_errors_say_what_and_where() {
    for (src, offset, want) in [
        ("", 0, "the template is empty"),
        ("{{ .RoleName", 0, "unclosed action"),
        (
            "ab {{ .Foo }}",
            6,
            "unknown field .Foo: the fields are .RoleName and .DisplayName",
        ),
        ("{{ .rolename }}", 3, "unknown field .rolename"),
        ("{{ . }}", 3, "'.' alone"),
        ("{{ .RoleName.First }}", 12, "fields have no fields"),
        (
            "{{ frob 3 }}",
            3,
            "frob is not a known function; the functions are printf, random",
        ),
        ("{{ hex .RoleName }}", 3, "hex is OpenBao's"),
        ("{{ len .RoleName }}", 3, "len is a Go template built-in"),
        (
            "{{ truncate 3 }}",
            3,
            "truncate takes 2 arguments (VALUE | truncate LENGTH), got 1",
        ),
        ("{{ uuid 3 }}", 3, "uuid takes 0 arguments"),
        (
            "{{ .RoleName | truncate \"3\" }}",
            24,
            "argument 1 of truncate must be an integer, got a string",
        ),
        (
            "{{ 3 | uppercase }}",
            3,
            "argument 1 of uppercase must be a string, got an integer",
        ),
        (
            "{{ random 9 | truncate 0 }}",
            23,
            "truncate's length must be > 0, got 0",
        ),
        (
            "{{ random -1 }}",
            10,
            "random's length must be 0 to 1024, got -1",
        ),
        ("{{ random 1025 }}", 10, "random's length must be 0 to 1024"),
        (
            "{{ printf \"%s\" }}",
            3,
            "printf's format has 1 verb (%s, %d) but 0 values follow",
        ),
        (
            "{{ printf \"x\" 1 2 }}",
            3,
            "has 0 verbs (%s, %d) but 2 values follow",
        ),
        (
            "{{ printf \"%d\" .RoleName }}",
            15,
            "printf's value 1 is a string, but its verb %d",
        ),
        (
            "{{ printf \"%s\" 3 }}",
            15,
            "printf's value 1 is an integer, but its verb %s",
        ),
        (
            "{{ printf \"%x\" 3 }}",
            10,
            "printf verb %x is not supported",
        ),
        (
            "{{ printf \"%5s\" .RoleName }}",
            10,
            "printf verb %5 is not supported",
        ),
        ("{{ printf \"50%\" }}", 10, "lone '%'"),
        (
            "{{ printf .RoleName }}",
            10,
            "printf's format must be a quoted string",
        ),
        ("{{ printf }}", 3, "printf needs a quoted format string"),
        ("{{ \"abc }}", 3, "unterminated quoted string"),
        ("{{ \"a\nb\" }}", 3, "unterminated quoted string"),
        ("{{ `abc }}", 3, "unterminated raw string"),
        ("{{ \"\\q\" }}", 4, "unknown escape sequence"),
        ("{{ \"\\x4\" }}", 4, "malformed escape sequence"),
        ("{{ \"\\xff\" }}", 4, "byte escapes above \\x7f"),
        ("{{ \"\\ud800\" }}", 4, "not a valid character"),
        ("{{ 0x10 }}", 3, "\"0x10\" is not a decimal integer"),
        ("{{ 1.5 }}", 3, "not a decimal integer"),
        ("{{ 010 }}", 3, "without a leading 0"),
        ("{{ 99999999999999999999 }}", 3, "is too large"),
        (
            "{{ if .RoleName }}x{{ end }}",
            3,
            "'if' actions are not supported",
        ),
        ("{{ range .RoleName }}", 3, "'range' actions"),
        ("{{ $x := 1 }}", 3, "variables ('$') are not supported"),
        ("{{ true }}", 3, "'true' is not supported"),
        ("{{ 'a' }}", 3, "character constants"),
        ("{{ ü }}", 3, "unexpected 'ü'"),
        ("{{ .RoleName 3 }}", 13, "only a function takes arguments"),
        ("{{ \"a\" | .RoleName }}", 9, "after '|' comes a function"),
        ("{{ .RoleName | }}", 15, "missing function after '|'"),
        ("{{ }}", 3, "empty action"),
        ("{{ () }}", 4, "empty parentheses"),
        ("{{ (random 3 }}", 3, "unclosed '('"),
        ("{{ (random 3", 3, "unclosed '('"),
        (
            "{{ random 3) }}",
            11,
            "unexpected ')' without a matching '('",
        ),
        (
            "{{ printf \"%s\"(.RoleName) }}",
            14,
            "missing space between arguments",
        ),
        (
            "{{.RoleName-}}",
            11,
            "a trim marker needs white space before it",
        ),
        (
            "{{-.RoleName}}",
            2,
            "\"-.RoleName\" is not a decimal integer",
        ),
        ("{{ .RoleName }", 13, "unexpected '}'"),
        ("{{/* open", 0, "unclosed comment"),
        ("{{/* c */ }}", 9, "a comment must end the action"),
    ] {
        let e = parse_error(src);
        assert!(e.message.contains(want), "{src:?}: {e}");
        assert_eq!(e.offset, offset, "{src:?}: {e}");
    }
    let e = parse_error(&"x".repeat(4097));
    assert!(e.message.contains("4097 bytes long; at most 4096"), "{e}");
}

#[test]
fn parse_errors_show_an_excerpt() {
    let e = parse_error("ab {{ .Foo }}");
    assert_eq!(
        e.to_string(),
        "unknown field .Foo: the fields are .RoleName and .DisplayName (at byte 6: \".Foo }}\")"
    );
    let e = parse_error("{{ printf \"%s\" .RoleName | truncate_sha256 2 }} and more text after it");
    assert!(
        e.to_string()
            .ends_with("(at byte 43: \"2 }} and more text after…\")"),
        "{e}"
    );
    let e = parse_error("{{ .RoleName | ");
    assert_eq!(
        e.to_string(),
        "unclosed action: '{{' without '}}' (at byte 0: \"{{ .RoleName | \")"
    );
    assert_eq!(
        TemplateError::from(parse_error("{{")).to_string(),
        "invalid username_template: unclosed action: '{{' without '}}' (at byte 0: \"{{\")"
    );
}

#[test]
fn runaway_growth_is_an_error() {
    let grow = r#" | replace "" "xxxxxxxxxx""#.repeat(5);
    let template = Template::parse(&format!("{{{{ .RoleName{grow} }}}}")).unwrap();
    let data = TemplateData {
        role_name: "abc",
        display_name: "d",
    };
    let e = template.render(&data, NOW, &mut Counter(0)).unwrap_err();
    assert_eq!(e, RenderError::TooLong);
    assert_eq!(
        TemplateError::from(e).to_string(),
        "username_template: a value grew past 65536 bytes while rendering"
    );
    let many = "{{ random 1024 }}".repeat(70);
    let template = Template::parse(&many).unwrap();
    assert!(template.render(&data, NOW, &mut Counter(0)).is_err());
}

#[test]
fn the_same_inputs_render_the_same_name() {
    let template = Template::parse("{{ random 12 }}-{{ uuid }}-{{ unix_time }}").unwrap();
    let data = TemplateData {
        role_name: "r",
        display_name: "d",
    };
    let a = template
        .render(&data, NOW, &mut StdRng::seed_from_u64(1))
        .unwrap();
    let b = template
        .render(&data, NOW, &mut StdRng::seed_from_u64(1))
        .unwrap();
    let c = template
        .render(&data, NOW, &mut StdRng::seed_from_u64(2))
        .unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn polardb_names() {
    let kind = AccountKind::Polardb;
    for good in ["ab", "v_app_x1", "abcdefghijklmnop", "a1", "x__9"] {
        assert_eq!(kind.check_name(good), Ok(()), "{good}");
    }
    for (bad, rule) in [
        ("a", "it must be 2 to 16 characters long, not 1"),
        ("abcdefghijklmnopq", "2 to 16 characters long, not 17"),
        (
            "v-app",
            "it may hold only lower-case letters, digits and '_', and character 2 is '-'",
        ),
        ("App", "character 1 is 'A'"),
        ("vé", "character 2 is 'é'"),
        ("1app", "it must start with a lower-case letter"),
        ("_app", "it must start with a lower-case letter"),
        ("app_", "it must end with a letter or a digit"),
        ("root", "PolarDB reserves that name"),
        ("admin", "PolarDB reserves that name"),
    ] {
        let e = kind.check_name(bad).unwrap_err();
        assert!(e.rule.contains(rule), "{bad}: {e}");
    }
    assert_eq!(
        kind.check_name("app_").unwrap_err().to_string(),
        "renders \"app_\", which is not a valid PolarDB account name: it must end with a letter or a digit"
    );
}

#[test]
fn dcs_acl_names() {
    let kind = AccountKind::DcsAcl;
    for good in [
        "a",
        "Reader-1",
        "app_green",
        "v-",
        &"x".repeat(64),
        "Default",
    ] {
        assert_eq!(kind.check_name(good), Ok(()), "{good}");
    }
    for (bad, rule) in [
        ("", "it must be 1 to 64 characters long, not 0"),
        (&"x".repeat(65), "not 65"),
        (
            "a.b",
            "it may hold only letters, digits, '-' and '_', and character 2 is '.'",
        ),
        ("a@b", "character 2 is '@'"),
        ("1a", "it must start with a letter"),
        ("-a", "it must start with a letter"),
        ("default", "Redis's default user"),
    ] {
        let e = kind.check_name(bad).unwrap_err();
        assert!(e.rule.contains(rule), "{bad:?}: {e}");
    }
}

/// The defaults, rendered with the counter's randomness.
#[test]
fn default_templates_render_the_expected_shape() {
    let polardb = AccountKind::Polardb.default_template();
    assert_eq!(
        render_with(polardb, "App-Reader.EU_1", "any"),
        "v_app__abcdefghi"
    );
    assert_eq!(render_with(polardb, "a.b", "any"), "v_a_b_abcdefghi");
    assert_eq!(render_with(polardb, "x", "any"), "v_x_abcdefghi");
    let dcs = AccountKind::DcsAcl.default_template();
    assert_eq!(
        render_with(dcs, "team.Reader-1", "any"),
        "v-team-Reader-1-ABCDEFGHIJKLMNOPQRST-1796646896"
    );
    let long = "a".repeat(128);
    assert_eq!(
        render_with(dcs, &long, "any"),
        format!("v-{}-ABCDEFGHIJKLMNOPQRST-1796646896", "a".repeat(24))
    );
}

/// A role name the path rule accepts: letters, digits, `-`, `_`, `.`,
/// a letter or digit at both ends, 1-128 characters.
fn random_role_name(rng: &mut StdRng) -> String {
    const INNER: &[u8] = b"abcXYZ019-_.";
    const ENDS: &[u8] = b"aZ09";
    let len = rng.random_range(1..=128);
    let mut name: Vec<u8> = (0..len)
        .map(|_| INNER[rng.random_range(0..INNER.len())])
        .collect();
    name[0] = ENDS[rng.random_range(0..ENDS.len())];
    name[len - 1] = ENDS[rng.random_range(0..ENDS.len())];
    String::from_utf8(name).unwrap()
}

/// Any text: ASCII punctuation, upper case, accents, CJK, emoji.
fn random_display_name(rng: &mut StdRng) -> String {
    const CHARS: &[char] = &[
        'a', 'Q', '7', '-', '.', '@', ' ', '_', 'é', 'Ü', '名', '😀', '\n',
    ];
    let len = rng.random_range(0..300);
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())])
        .collect()
}

#[test]
fn default_templates_always_make_valid_names() {
    for kind in [AccountKind::Polardb, AccountKind::DcsAcl] {
        let template = check_template(kind, kind.default_template()).unwrap();
        for seed in 0..3000 {
            let mut rng = StdRng::seed_from_u64(seed);
            let role_name = random_role_name(&mut rng);
            assert_eq!(crate::framework::validate_name(&role_name), Ok(()));
            let display_name = random_display_name(&mut rng);
            // Any time from 1970 to 2200.
            let secs = rng.random_range(0..7_258_118_400i64);
            let now = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            let data = TemplateData {
                role_name: &role_name,
                display_name: &display_name,
            };
            if let Err(e) = template.username(kind, &data, now, &mut rng) {
                panic!("{kind:?} seed {seed}: {e}");
            }
        }
    }
}

#[test]
fn check_samples_are_valid_role_names() {
    for name in accounts::sample_role_names() {
        assert_eq!(crate::framework::validate_name(&name), Ok(()), "{name}");
    }
}

/// Vault's database defaults (research-13.md §3) render as in Vault.
#[test]
fn vault_default_templates_render_alike() {
    let postgres = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}"#;
    assert_eq!(
        render_with(postgres, "my-role", "token"),
        "v-token-my-role-ABCDEFGHIJKLMNOPQRST-1796646896"
    );
    let mysql = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 10) (.RoleName | truncate 10) (random 20) (unix_time) | truncate 32 }}"#;
    assert_eq!(
        render_with(mysql, "readonly-role", "userpass-alice"),
        "v-userpass-a-readonly-r-ABCDEFGH"
    );
    let legacy = r#"{{ printf "v-%s-%s" (.RoleName | truncate 4) (random 20) | truncate 16 }}"#;
    assert_eq!(render_with(legacy, "readonly", "token"), "v-read-ABCDEFGHI");
    let ldap = "v_{{.DisplayName}}_{{.RoleName}}_{{random 10}}_{{unix_time}}";
    assert_eq!(
        render_with(ldap, "dev", "token"),
        "v_token_dev_ABCDEFGHIJ_1796646896"
    );
    let cassandra = r#"{{ printf "v_%s_%s_%s_%s" (.DisplayName | truncate 15) (.RoleName | truncate 15) (random 20) (unix_time) | truncate 100 | replace "-" "_" | lowercase }}"#;
    assert_eq!(
        render_with(cassandra, "my-role", "token"),
        "v_token_my_role_abcdefghijklmnopqrst_1796646896"
    );
}

#[test]
fn check_template_names_the_sample_and_the_rule() {
    let e = check_template(AccountKind::Polardb, "{{ .RoleName }}").unwrap_err();
    assert_eq!(
        e.to_string(),
        "username_template renders \"a\", which is not a valid PolarDB account name: it must be 2 \
         to 16 characters long, not 1 (rendered for role name \"a\" and display name \"token\")"
    );
    // Vault's PostgreSQL default: '-' for PolarDB; for DCS the display name's
    // 'Ü' survives `truncate 8`.
    let postgres = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}"#;
    let e = check_template(AccountKind::Polardb, postgres).unwrap_err();
    assert!(e.to_string().contains("not 41"), "{e}");
    match check_template(AccountKind::DcsAcl, postgres).unwrap_err() {
        TemplateError::Sample {
            display_name,
            error,
            ..
        } => {
            assert_eq!(display_name, "ldap-Ünïcødé-名前");
            assert!(error.to_string().contains("character 8 is 'Ü'"), "{error}");
        }
        e => panic!("{e}"),
    }
    // Luck is not enough: `random` may start with a digit or upper case.
    assert!(check_template(AccountKind::Polardb, "{{ random 5 | lowercase }}").is_err());
    assert!(check_template(AccountKind::DcsAcl, "{{ random 5 }}").is_err());
    assert!(check_template(AccountKind::Polardb, "v{{ random 5 | lowercase }}").is_ok());
    // A fixed name is refused for PolarDB's reserved names.
    let e = check_template(AccountKind::Polardb, "admin").unwrap_err();
    assert!(e.to_string().contains("PolarDB reserves that name"), "{e}");
    // Display names can be anything; using them raw fails.
    let e = check_template(AccountKind::DcsAcl, "u-{{ .DisplayName }}").unwrap_err();
    assert!(
        e.to_string()
            .contains("display name \"userpass-Alice.Smith@example.com\""),
        "{e}"
    );
    let e = check_template(AccountKind::DcsAcl, "{{ .RoleName").unwrap_err();
    assert!(matches!(e, TemplateError::Parse(_)), "{e}");
}

#[test]
fn render_username_checks_the_rendered_name() {
    let data = TemplateData {
        role_name: "orders",
        display_name: "token",
    };
    let name = render_username(
        AccountKind::Polardb,
        AccountKind::Polardb.default_template(),
        &data,
        NOW,
        &mut Counter(0),
    );
    assert_eq!(name, Ok("v_orde_abcdefghi".to_owned()));
    let e = render_username(
        AccountKind::DcsAcl,
        "{{ .RoleName }}.x",
        &data,
        NOW,
        &mut Counter(0),
    );
    assert!(
        matches!(&e, Err(TemplateError::Name(n)) if n.name == "orders.x"),
        "{e:?}"
    );
}
