//! AWS Signature Version 4 for calling AWS APIs (Bedrock and the like) from the Worker.
//!
//! Built on `sha2` and `hmac`, which the crate already has, rather than on the `aws-sigv4` crate,
//! which would bring the smithy runtime crates into the wasm32 build. The algorithm is small and
//! AWS publishes vectors for each stage, which the tests below check.
//!
//! Only header-based signing for non-S3 services is implemented: S3 canonicalises paths
//! differently (no normalisation, single encoding) and is not a target here.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Headers the signer sets itself. A caller-supplied copy would be signed twice, and AWS (which
/// sees one header on the wire) would then reject the signature.
const SIGNER_OWNED_HEADERS: [&str; 3] = ["host", "x-amz-date", "x-amz-security-token"];

/// One request to sign. `path` is the absolute path as it will be sent (e.g. "/foundation-models");
/// `query` are decoded (name, value) pairs; `headers` are extra headers to sign besides `host` and
/// `x-amz-date` (may be empty); `payload` the body bytes (empty for GET).
///
/// `path` must be byte-for-byte what the HTTP client puts on the wire: AWS encodes the received
/// path once more before comparing, so a path sent as `/model/a%3A0/invoke` is signed as
/// `/model/a%253A0/invoke`, and one sent with a literal `:` is signed as `%3A`. Entries of
/// `headers` named `host`, `x-amz-date` or `x-amz-security-token` are ignored: the signer owns
/// them.
pub struct SigningRequest<'a> {
    pub method: &'a str,
    pub host: &'a str, // host[:port] exactly as in the URL, e.g. "bedrock.us-east-1.amazonaws.com"
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    pub payload: &'a [u8],
}

pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

/// Signs `request` for `service` in `region` at `amz_date` ("YYYYMMDDTHHMMSSZ") and returns the
/// headers to add to the request: `x-amz-date`, `x-amz-security-token` when a session token is
/// given, and `authorization`. (`host` is signed but not returned: the HTTP client sets it.)
///
/// A malformed `amz_date` is not rejected here; AWS rejects the resulting signature instead.
pub fn sign(request: &SigningRequest, credentials: &Credentials, region: &str, service: &str, amz_date: &str) -> Vec<(String, String)> {
    let canonical = canonical_request(request, amz_date, credentials.session_token);
    let scope = credential_scope(amz_date, region, service);
    let to_sign = string_to_sign(&canonical.text, amz_date, &scope);
    let key = signing_key(credentials.secret_access_key, date_stamp(amz_date), region, service);
    let signature = hex::encode(hmac(&key, to_sign.as_bytes()));

    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
        credentials.access_key_id, canonical.signed_headers
    );

    let mut out = Vec::with_capacity(3);
    out.push(("x-amz-date".to_string(), amz_date.to_string()));
    if let Some(token) = credentials.session_token {
        // Sent exactly as signed, so that the header on the wire matches the canonical one.
        out.push(("x-amz-security-token".to_string(), normalize_header_value(token)));
    }
    out.push(("authorization".to_string(), authorization));
    out
}

/// "YYYYMMDDTHHMMSSZ" for a Unix time in milliseconds (UTC), without any date crate.
///
/// Times before the epoch round down to the whole second, like every other instant. Years outside
/// 0000–9999 do not fit the format and are printed with as many digits as they need.
pub fn amz_date(unix_ms: i64) -> String {
    let seconds = unix_ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", second_of_day / 3600, second_of_day % 3600 / 60, second_of_day % 60)
}

/// Proleptic Gregorian (year, month, day) for a count of days since 1970-01-01.
///
/// Howard Hinnant's `civil_from_days`: shifting the year to start on 1 March puts the leap day
/// at the end, so month lengths follow a fixed pattern and no table or loop is needed.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The canonical request and the `SignedHeaders` list that goes with it.
pub(crate) struct CanonicalRequest {
    pub(crate) text: String,
    pub(crate) signed_headers: String,
}

pub(crate) fn canonical_request(request: &SigningRequest, amz_date: &str, session_token: Option<&str>) -> CanonicalRequest {
    let (headers, signed_headers) = canonical_headers(request, amz_date, session_token);
    let text = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        canonical_uri(request.path),
        canonical_query_string(request.query),
        headers,
        signed_headers,
        hex::encode(Sha256::digest(request.payload)),
    );
    CanonicalRequest { text, signed_headers }
}

/// Removes empty, `.` and `..` segments (non-S3 services normalise the path before checking)
/// and percent-encodes each remaining segment once. Existing `%XX` escapes are encoded again on
/// purpose: AWS encodes the path it received, so its canonical form of `%3A` is `%253A`.
pub(crate) fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let mut uri = String::with_capacity(path.len() + 1);
    for segment in &segments {
        uri.push('/');
        uri.push_str(&uri_encode(segment));
    }
    // The trailing slash is significant to the service; the bare root must still be "/".
    if segments.is_empty() || path.ends_with('/') {
        uri.push('/');
    }
    uri
}

pub(crate) fn canonical_query_string(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query.iter().map(|(name, value)| (uri_encode(name), uri_encode(value))).collect();
    // Sorted as (name, value) pairs of *encoded* bytes, not as "name=value" strings: the latter
    // would put "Param-3=" before "Param=" because '-' sorts before '='.
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Returns the canonical header block (each line `name:value\n`) and the signed-headers list.
fn canonical_headers(request: &SigningRequest, amz_date: &str, session_token: Option<&str>) -> (String, String) {
    let mut headers: Vec<(String, String)> = Vec::with_capacity(request.headers.len() + 3);
    headers.push(("host".to_string(), normalize_header_value(request.host)));
    headers.push(("x-amz-date".to_string(), amz_date.to_string()));
    if let Some(token) = session_token {
        headers.push(("x-amz-security-token".to_string(), normalize_header_value(token)));
    }
    for (name, value) in request.headers {
        let name = name.trim().to_ascii_lowercase();
        if SIGNER_OWNED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        headers.push((name, normalize_header_value(value)));
    }
    // Stable sort: repeated headers keep the order they were given in, which AWS preserves when
    // it joins them with commas.
    headers.sort_by(|a, b| a.0.cmp(&b.0));

    let mut block = String::new();
    let mut signed: Vec<&str> = Vec::with_capacity(headers.len());
    for (name, value) in &headers {
        if signed.last() == Some(&name.as_str()) {
            block.pop(); // the previous line's '\n'
            block.push(',');
        } else {
            block.push_str(name);
            block.push(':');
            signed.push(name);
        }
        block.push_str(value);
        block.push('\n');
    }
    (block, signed.join(";"))
}

/// Trims and collapses whitespace runs to one space, as AWS does before comparing; intermediaries
/// may re-space a header, so the signature must not depend on it.
fn normalize_header_value(value: &str) -> String {
    value.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

/// RFC 3986 percent-encoding of everything outside the unreserved set, on UTF-8 bytes, with
/// uppercase hex as AWS requires.
pub(crate) fn uri_encode(input: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(input.len());
    for &byte in input.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

pub(crate) fn credential_scope(amz_date: &str, region: &str, service: &str) -> String {
    format!("{}/{region}/{service}/aws4_request", date_stamp(amz_date))
}

pub(crate) fn string_to_sign(canonical_request: &str, amz_date: &str, credential_scope: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{credential_scope}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())))
}

/// The key is derived per day, region and service so that a leaked derived key is of limited use.
pub(crate) fn signing_key(secret_access_key: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_secret = format!("AWS4{secret_access_key}");
    let k_date = hmac(k_secret.as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// "YYYYMMDD" part of an amz-date. Falls back to the whole string rather than panicking on a short
/// one; AWS then rejects the signature, which is the right outcome for a bad date.
fn date_stamp(amz_date: &str) -> &str {
    amz_date.get(..8).unwrap_or(amz_date)
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    //! Vectors come from AWS's SigV4 test suite as shipped in awslabs/aws-c-auth
    //! (tests/aws-signing-test-suite/v4/<case>/header-*.txt). Cases that were also in the older
    //! suite published at docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html carry
    //! the same values there. The IAM ListUsers case is the worked example of the AWS General
    //! Reference ("Create a canonical request", "Create a string to sign", "Calculate the
    //! signature" for Signature Version 4).

    use super::*;

    const SUITE_CREDENTIALS: Credentials<'static> =
        Credentials { access_key_id: "AKIDEXAMPLE", secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", session_token: None };
    const SUITE_HOST: &str = "example.amazonaws.com";
    const SUITE_DATE: &str = "20150830T123600Z";
    const SUITE_SCOPE: &str = "20150830/us-east-1/service/aws4_request";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn suite_request<'a>(
        method: &'a str,
        path: &'a str,
        query: &'a [(String, String)],
        headers: &'a [(String, String)],
    ) -> SigningRequest<'a> {
        SigningRequest { method, host: SUITE_HOST, path, query, headers, payload: b"" }
    }

    /// Checks all three published stages of one test-suite case: the canonical request, the
    /// string to sign and the Authorization header.
    fn assert_suite_case(
        request: &SigningRequest,
        credentials: &Credentials,
        expected_creq: &str,
        expected_sts_hash: &str,
        expected_signed_headers: &str,
        expected_signature: &str,
    ) {
        let creq = canonical_request(request, SUITE_DATE, credentials.session_token);
        assert_eq!(creq.text, expected_creq, "canonical request");
        assert_eq!(creq.signed_headers, expected_signed_headers, "signed headers");

        let sts = string_to_sign(&creq.text, SUITE_DATE, &credential_scope(SUITE_DATE, "us-east-1", "service"));
        assert_eq!(sts, format!("AWS4-HMAC-SHA256\n{SUITE_DATE}\n{SUITE_SCOPE}\n{expected_sts_hash}"), "string to sign");

        let headers = sign(request, credentials, "us-east-1", "service", SUITE_DATE);
        let authorization = headers.iter().find(|(name, _)| name == "authorization").map(|(_, value)| value.as_str());
        assert_eq!(
            authorization,
            Some(
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{SUITE_SCOPE}, \
                     SignedHeaders={expected_signed_headers}, Signature={expected_signature}"
                )
                .as_str()
            ),
            "authorization"
        );
    }

    #[test]
    fn get_vanilla_signs_host_and_date_over_an_empty_body() {
        assert_suite_case(
            &suite_request("GET", "/", &[], &[]),
            &SUITE_CREDENTIALS,
            &format!("GET\n/\n\nhost:{SUITE_HOST}\nx-amz-date:{SUITE_DATE}\n\nhost;x-amz-date\n{EMPTY_SHA256}"),
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        );
    }

    #[test]
    fn sign_returns_date_and_authorization_but_not_host() {
        let headers = sign(&suite_request("GET", "/", &[], &[]), &SUITE_CREDENTIALS, "us-east-1", "service", SUITE_DATE);
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["x-amz-date", "authorization"]);
        assert_eq!(headers[0].1, SUITE_DATE);
    }

    #[test]
    fn post_vanilla_puts_the_method_in_the_canonical_request() {
        assert_suite_case(
            &suite_request("POST", "/", &[], &[]),
            &SUITE_CREDENTIALS,
            &format!("POST\n/\n\nhost:{SUITE_HOST}\nx-amz-date:{SUITE_DATE}\n\nhost;x-amz-date\n{EMPTY_SHA256}"),
            "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
            "host;x-amz-date",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        );
    }

    #[test]
    fn query_parameters_are_sorted_by_name() {
        // get-vanilla-query-order-key-case: sent as Param2=value2&Param1=value1.
        let query = pairs(&[("Param2", "value2"), ("Param1", "value1")]);
        assert_suite_case(
            &suite_request("GET", "/", &query, &[]),
            &SUITE_CREDENTIALS,
            &format!(
                "GET\n/\nParam1=value1&Param2=value2\nhost:{SUITE_HOST}\nx-amz-date:{SUITE_DATE}\n\n\
                 host;x-amz-date\n{EMPTY_SHA256}"
            ),
            "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
            "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        );
    }

    #[test]
    fn query_names_are_percent_encoded_as_utf8() {
        // get-vanilla-utf8-query: /?ሴ=bar
        let query = pairs(&[("\u{1234}", "bar")]);
        assert_suite_case(
            &suite_request("GET", "/", &query, &[]),
            &SUITE_CREDENTIALS,
            &format!(
                "GET\n/\n%E1%88%B4=bar\nhost:{SUITE_HOST}\nx-amz-date:{SUITE_DATE}\n\n\
                 host;x-amz-date\n{EMPTY_SHA256}"
            ),
            "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
            "host;x-amz-date",
            "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        );
    }

    #[test]
    fn query_is_sorted_on_encoded_names_not_on_name_value_strings() {
        // get-vanilla-query-order-encoded: /?Param-3=Value3&Param=Value2&%E1%88%B4=Value1
        let query = pairs(&[("Param-3", "Value3"), ("Param", "Value2"), ("\u{1234}", "Value1")]);
        assert_suite_case(
            &suite_request("GET", "/", &query, &[]),
            &SUITE_CREDENTIALS,
            &format!(
                "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\nhost:{SUITE_HOST}\n\
                 x-amz-date:{SUITE_DATE}\n\nhost;x-amz-date\n{EMPTY_SHA256}"
            ),
            "868294f5c38bd141c4972a373a76654f1418a8e4fc18b2e7903ae45e8ae0ec71",
            "host;x-amz-date",
            "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
        );
    }

    #[test]
    fn unreserved_query_characters_are_not_encoded() {
        const UNRESERVED: &str = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let query = pairs(&[(UNRESERVED, UNRESERVED)]);
        assert_suite_case(
            &suite_request("GET", "/", &query, &[]),
            &SUITE_CREDENTIALS,
            &format!(
                "GET\n/\n{UNRESERVED}={UNRESERVED}\nhost:{SUITE_HOST}\nx-amz-date:{SUITE_DATE}\n\n\
                 host;x-amz-date\n{EMPTY_SHA256}"
            ),
            "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
            "host;x-amz-date",
            "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
        );
    }

    #[test]
    fn header_values_are_trimmed_and_inner_whitespace_collapsed() {
        // get-header-value-trim: "My-Header1: value1", "My-Header2: \"a   b   c\"".
        let headers = pairs(&[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")]);
        assert_suite_case(
            &suite_request("GET", "/", &[], &headers),
            &SUITE_CREDENTIALS,
            &format!(
                "GET\n/\n\nhost:{SUITE_HOST}\nmy-header1:value1\nmy-header2:\"a b c\"\n\
                 x-amz-date:{SUITE_DATE}\n\nhost;my-header1;my-header2;x-amz-date\n{EMPTY_SHA256}"
            ),
            "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
            "host;my-header1;my-header2;x-amz-date",
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        );
    }

    #[test]
    fn repeated_headers_are_joined_with_commas_in_the_order_given() {
        // get-header-key-duplicate
        let headers = pairs(&[("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")]);
        assert_suite_case(
            &suite_request("GET", "/", &[], &headers),
            &SUITE_CREDENTIALS,
            &format!(
                "GET\n/\n\nhost:{SUITE_HOST}\nmy-header1:value2,value2,value1\nx-amz-date:{SUITE_DATE}\n\n\
                 host;my-header1;x-amz-date\n{EMPTY_SHA256}"
            ),
            "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
            "host;my-header1;x-amz-date",
            "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        );
        // get-header-value-order
        let headers = pairs(&[("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2")]);
        assert_suite_case(
            &suite_request("GET", "/", &[], &headers),
            &SUITE_CREDENTIALS,
            &format!(
                "GET\n/\n\nhost:{SUITE_HOST}\nmy-header1:value4,value1,value3,value2\nx-amz-date:{SUITE_DATE}\n\n\
                 host;my-header1;x-amz-date\n{EMPTY_SHA256}"
            ),
            "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
            "host;my-header1;x-amz-date",
            "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
        );
    }

    #[test]
    fn caller_supplied_host_and_date_headers_are_not_signed_twice() {
        // Same expectations as get-vanilla: the signer's own host and x-amz-date win.
        let headers = pairs(&[("Host", SUITE_HOST), ("X-Amz-Date", "19990101T000000Z")]);
        assert_suite_case(
            &suite_request("GET", "/", &[], &headers),
            &SUITE_CREDENTIALS,
            &format!("GET\n/\n\nhost:{SUITE_HOST}\nx-amz-date:{SUITE_DATE}\n\nhost;x-amz-date\n{EMPTY_SHA256}"),
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        );
    }

    #[test]
    fn path_segments_are_percent_encoded_as_utf8() {
        // get-utf8: /ሴ
        assert_suite_case(
            &suite_request("GET", "/\u{1234}", &[], &[]),
            &SUITE_CREDENTIALS,
            &format!("GET\n/%E1%88%B4\n\nhost:{SUITE_HOST}\nx-amz-date:{SUITE_DATE}\n\nhost;x-amz-date\n{EMPTY_SHA256}"),
            "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
            "host;x-amz-date",
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
        );
    }

    #[test]
    fn unreserved_path_characters_are_not_encoded() {
        let path = "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        assert_suite_case(
            &suite_request("GET", path, &[], &[]),
            &SUITE_CREDENTIALS,
            &format!("GET\n{path}\n\nhost:{SUITE_HOST}\nx-amz-date:{SUITE_DATE}\n\nhost;x-amz-date\n{EMPTY_SHA256}"),
            "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
            "host;x-amz-date",
            "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
        );
    }

    #[test]
    fn spaces_in_the_path_are_encoded_and_the_trailing_slash_kept() {
        // get-space-normalized: /example space/
        assert_suite_case(
            &suite_request("GET", "/example space/", &[], &[]),
            &SUITE_CREDENTIALS,
            &format!(
                "GET\n/example%20space/\n\nhost:{SUITE_HOST}\nx-amz-date:{SUITE_DATE}\n\n\
                 host;x-amz-date\n{EMPTY_SHA256}"
            ),
            "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
            "host;x-amz-date",
            "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
        );
    }

    #[test]
    fn path_is_normalised_for_non_s3_services() {
        // get-slashes-normalized: //example//
        assert_suite_case(
            &suite_request("GET", "//example//", &[], &[]),
            &SUITE_CREDENTIALS,
            &format!("GET\n/example/\n\nhost:{SUITE_HOST}\nx-amz-date:{SUITE_DATE}\n\nhost;x-amz-date\n{EMPTY_SHA256}"),
            "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
            "host;x-amz-date",
            "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
        );
        // get-slash-pointless-dot-normalized: /./example
        assert_suite_case(
            &suite_request("GET", "/./example", &[], &[]),
            &SUITE_CREDENTIALS,
            &format!("GET\n/example\n\nhost:{SUITE_HOST}\nx-amz-date:{SUITE_DATE}\n\nhost;x-amz-date\n{EMPTY_SHA256}"),
            "214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702",
            "host;x-amz-date",
            "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
        );
        // get-relative-relative-normalized, get-relative-normalized, get-slash-normalized and
        // get-slash-dot-slash-normalized all canonicalise to "/" and share get-vanilla's signature.
        for path in ["/example1/example2/../..", "/example/..", "//", "/./"] {
            assert_suite_case(
                &suite_request("GET", path, &[], &[]),
                &SUITE_CREDENTIALS,
                &format!("GET\n/\n\nhost:{SUITE_HOST}\nx-amz-date:{SUITE_DATE}\n\nhost;x-amz-date\n{EMPTY_SHA256}"),
                "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
                "host;x-amz-date",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            );
        }
    }

    #[test]
    fn percent_escapes_already_in_the_path_are_encoded_again() {
        // Not a published vector: AWS's rule that non-S3 services encode the path twice, applied
        // to a path sent pre-encoded, as Bedrock model IDs containing ':' are.
        assert_eq!(
            canonical_uri("/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke"),
            "/model/anthropic.claude-3-haiku-20240307-v1%253A0/invoke"
        );
        assert_eq!(canonical_uri(""), "/");
    }

    #[test]
    fn session_token_is_signed_and_returned() {
        // post-sts-header-before
        const TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
        let credentials = Credentials { session_token: Some(TOKEN), ..SUITE_CREDENTIALS };
        let request = suite_request("POST", "/", &[], &[]);
        assert_suite_case(
            &request,
            &credentials,
            &format!(
                "POST\n/\n\nhost:{SUITE_HOST}\nx-amz-date:{SUITE_DATE}\nx-amz-security-token:{TOKEN}\n\n\
                 host;x-amz-date;x-amz-security-token\n{EMPTY_SHA256}"
            ),
            "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
            "host;x-amz-date;x-amz-security-token",
            "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        );
        let headers = sign(&request, &credentials, "us-east-1", "service", SUITE_DATE);
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["x-amz-date", "x-amz-security-token", "authorization"]);
        assert_eq!(headers[1].1, TOKEN);

        // get-vanilla-with-session-token
        const SHORT_TOKEN: &str = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        assert_suite_case(
            &suite_request("GET", "/", &[], &[]),
            &Credentials { session_token: Some(SHORT_TOKEN), ..SUITE_CREDENTIALS },
            &format!(
                "GET\n/\n\nhost:{SUITE_HOST}\nx-amz-date:{SUITE_DATE}\nx-amz-security-token:{SHORT_TOKEN}\n\n\
                 host;x-amz-date;x-amz-security-token\n{EMPTY_SHA256}"
            ),
            "067b36aa60031588cea4a4cde1f21215227a047690c72247f1d70b32fbbfad2b",
            "host;x-amz-date;x-amz-security-token",
            "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
        );
    }

    #[test]
    fn payload_hash_is_the_sha256_of_the_body() {
        // post-x-www-form-urlencoded (signed-body variant: x-amz-content-sha256 is among the
        // signed headers, which callers pass like any other header).
        const BODY_SHA256: &str = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";
        let headers = pairs(&[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", "13"),
            ("x-amz-content-sha256", BODY_SHA256),
        ]);
        let request =
            SigningRequest { method: "POST", host: SUITE_HOST, path: "/", query: &[], headers: &headers, payload: b"Param1=value1" };
        assert_suite_case(
            &request,
            &SUITE_CREDENTIALS,
            &format!(
                "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\n\
                 host:{SUITE_HOST}\nx-amz-content-sha256:{BODY_SHA256}\nx-amz-date:{SUITE_DATE}\n\n\
                 content-length;content-type;host;x-amz-content-sha256;x-amz-date\n{BODY_SHA256}"
            ),
            "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
            "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
            "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
        );
    }

    #[test]
    fn iam_list_users_matches_the_general_reference_example() {
        let query = pairs(&[("Action", "ListUsers"), ("Version", "2010-05-08")]);
        let headers = pairs(&[("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]);
        let request =
            SigningRequest { method: "GET", host: "iam.amazonaws.com", path: "/", query: &query, headers: &headers, payload: b"" };

        let creq = canonical_request(&request, SUITE_DATE, None);
        assert_eq!(
            creq.text,
            format!(
                "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
                 content-type:application/x-www-form-urlencoded; charset=utf-8\n\
                 host:iam.amazonaws.com\nx-amz-date:{SUITE_DATE}\n\n\
                 content-type;host;x-amz-date\n{EMPTY_SHA256}"
            )
        );

        let scope = credential_scope(SUITE_DATE, "us-east-1", "iam");
        assert_eq!(scope, "20150830/us-east-1/iam/aws4_request");
        let sts = string_to_sign(&creq.text, SUITE_DATE, &scope);
        assert_eq!(
            sts,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n\
             f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );

        let key = signing_key(SUITE_CREDENTIALS.secret_access_key, "20150830", "us-east-1", "iam");
        assert_eq!(hex::encode(key), "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");

        let headers = sign(&request, &SUITE_CREDENTIALS, "us-east-1", "iam", SUITE_DATE);
        assert_eq!(
            headers,
            pairs(&[
                ("x-amz-date", SUITE_DATE),
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                     SignedHeaders=content-type;host;x-amz-date, \
                     Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
                ),
            ])
        );
    }

    #[test]
    fn amz_date_formats_the_test_suite_instant() {
        assert_eq!(amz_date(1_440_938_160_000), "20150830T123600Z");
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(253_402_300_799_999), "99991231T235959Z");
    }

    #[test]
    fn amz_date_handles_leap_days_and_century_rules() {
        // Expected values checked against GNU `date -u -d @<seconds>`.
        assert_eq!(amz_date(951_782_400_000), "20000229T000000Z"); // 2000 is a leap year (÷400)
        assert_eq!(amz_date(951_868_800_000), "20000301T000000Z");
        assert_eq!(amz_date(1_709_251_199_999), "20240229T235959Z");
        assert_eq!(amz_date(-2_203_977_600_000), "19000228T000000Z"); // 1900 is not (÷100)
        assert_eq!(amz_date(-2_203_891_200_000), "19000301T000000Z");
    }

    #[test]
    fn amz_date_rounds_times_before_the_epoch_down() {
        assert_eq!(amz_date(-1), "19691231T235959Z");
    }

    #[test]
    fn amz_date_does_not_panic_at_the_extremes() {
        let _ = amz_date(i64::MIN);
        let _ = amz_date(i64::MAX);
    }
}
