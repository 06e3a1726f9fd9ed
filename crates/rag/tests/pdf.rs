//! PDF extraction on PDFs built here with lopdf (re-exported by
//! pdf-extract): a page of known text, the same PDF encrypted with a user
//! password (refused) and with only an owner password (read), PDFs cut
//! short or mislabelled, and, as a property, that no bytes starting with
//! `%PDF-` make extraction panic.

use offgrid_rag::{DocumentKind, ExtractError, ExtractLimits, extract, extract_document};
use pdf_extract::content::{Content, Operation};
use pdf_extract::{
    Dictionary, Document, EncryptionState, EncryptionVersion, Object, Permissions, Stream,
    StringFormat,
};
use proptest::prelude::*;

/// A one-page PDF showing `lines` in Helvetica, one per line.
fn pdf_document(lines: &[&str]) -> Document {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(Dictionary::from_iter([
        ("Type", Object::Name(b"Font".to_vec())),
        ("Subtype", Object::Name(b"Type1".to_vec())),
        ("BaseFont", Object::Name(b"Helvetica".to_vec())),
    ]));
    let fonts = Dictionary::from_iter([("F1", Object::Reference(font_id))]);
    let resources_id = doc.add_object(Dictionary::from_iter([("Font", Object::Dictionary(fonts))]));
    let mut operations = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec![Object::Name(b"F1".to_vec()), 12.into()]),
        Operation::new("Td", vec![72.into(), 750.into()]),
    ];
    for line in lines {
        operations.push(Operation::new(
            "Tj",
            vec![Object::String(
                line.as_bytes().to_vec(),
                StringFormat::Literal,
            )],
        ));
        operations.push(Operation::new("Td", vec![0.into(), (-16).into()]));
    }
    operations.push(Operation::new("ET", vec![]));
    let content = Content { operations }.encode().expect("content stream");
    let content_id = doc.add_object(Stream::new(Dictionary::new(), content));
    let page_id = doc.add_object(Dictionary::from_iter([
        ("Type", Object::Name(b"Page".to_vec())),
        ("Parent", Object::Reference(pages_id)),
        ("Contents", Object::Reference(content_id)),
    ]));
    let media_box = [0, 0, 595, 842].into_iter().map(Object::from).collect();
    let pages = Dictionary::from_iter([
        ("Type", Object::Name(b"Pages".to_vec())),
        ("Kids", Object::Array(vec![Object::Reference(page_id)])),
        ("Count", 1.into()),
        ("Resources", Object::Reference(resources_id)),
        ("MediaBox", Object::Array(media_box)),
    ]);
    doc.objects.insert(pages_id, Object::Dictionary(pages));
    let catalog_id = doc.add_object(Dictionary::from_iter([
        ("Type", Object::Name(b"Catalog".to_vec())),
        ("Pages", Object::Reference(pages_id)),
    ]));
    doc.trailer.set("Root", Object::Reference(catalog_id));
    let id = Object::String(b"0123456789abcdef".to_vec(), StringFormat::Hexadecimal);
    doc.trailer.set("ID", Object::Array(vec![id.clone(), id]));
    doc
}

fn save(mut doc: Document) -> Vec<u8> {
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("save");
    bytes
}

/// `lines` in a PDF encrypted with RC4 128-bit under these passwords.
fn encrypted_pdf(lines: &[&str], user_password: &str) -> Vec<u8> {
    let mut doc = pdf_document(lines);
    let version = EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner secret",
        user_password,
        key_length: 128,
        permissions: Permissions::default(),
    };
    let state = EncryptionState::try_from(version).expect("encryption state");
    doc.encrypt(&state).expect("encrypt");
    save(doc)
}

const LINES: [&str; 2] = ["Offline retrieval works.", "Second line of the page."];

#[test]
fn a_pdf_gives_its_text() {
    let bytes = save(pdf_document(&LINES));
    let got = extract_document(
        &bytes,
        "paper.pdf",
        Some("application/pdf"),
        &ExtractLimits::default(),
    )
    .expect("text");
    assert_eq!(got.kind, DocumentKind::Pdf);
    for line in LINES {
        assert!(
            got.text.contains(line),
            "{line:?} missing from {:?}",
            got.text
        );
    }
    assert!(!got.text.starts_with(char::is_whitespace) && !got.text.contains("\n\n\n"));
}

#[test]
fn a_pdf_named_txt_is_read_as_the_pdf_it_is() {
    let bytes = save(pdf_document(&LINES));
    let got = extract_document(
        &bytes,
        "notes.txt",
        Some("text/plain"),
        &ExtractLimits::default(),
    );
    assert_eq!(got.map(|d| d.kind), Ok(DocumentKind::Pdf));
}

#[test]
fn a_pdf_needing_a_password_is_refused() {
    let bytes = encrypted_pdf(&LINES, "user secret");
    assert!(
        !bytes
            .windows(LINES[0].len())
            .any(|w| w == LINES[0].as_bytes()),
        "the fixture really is encrypted"
    );
    let got = extract(&bytes, "locked.pdf", None, &ExtractLimits::default());
    assert_eq!(got, Err(ExtractError::Encrypted));
    assert_eq!(
        ExtractError::Encrypted.to_string(),
        "the PDF is password-protected: upload a copy without a password"
    );
}

#[test]
fn a_pdf_with_only_an_owner_password_is_read() {
    let bytes = encrypted_pdf(&LINES, "");
    let got = extract(&bytes, "restricted.pdf", None, &ExtractLimits::default()).expect("text");
    assert!(got.contains(LINES[1]), "{got:?}");
}

#[test]
fn an_encrypt_entry_lopdf_cannot_use_is_still_encrypted() {
    // A trailer naming an /Encrypt dictionary with an unknown handler.
    let mut doc = pdf_document(&LINES);
    let handler = doc.add_object(Dictionary::from_iter([
        ("Filter", Object::Name(b"FancyDRM".to_vec())),
        ("V", 9.into()),
    ]));
    doc.trailer.set("Encrypt", Object::Reference(handler));
    let got = extract(&save(doc), "drm.pdf", None, &ExtractLimits::default());
    assert_eq!(got, Err(ExtractError::Encrypted));
}

#[test]
fn a_pdf_without_text_is_empty_and_one_with_too_much_is_too_long() {
    let blank = save(pdf_document(&[]));
    let got = extract(&blank, "scan.pdf", None, &ExtractLimits::default());
    assert_eq!(
        got,
        Err(ExtractError::Empty {
            kind: DocumentKind::Pdf
        })
    );
    let small = ExtractLimits {
        max_chars: 20,
        ..ExtractLimits::default()
    };
    let long = save(pdf_document(&LINES));
    assert_eq!(
        extract(&long, "long.pdf", None, &small),
        Err(ExtractError::TooLong { max: 20 })
    );
}

#[test]
fn broken_pdfs_are_malformed_not_panics() {
    let whole = save(pdf_document(&LINES));
    for cut in [8, whole.len() / 3, whole.len() / 2, whole.len() - 40] {
        match extract(&whole[..cut], "cut.pdf", None, &ExtractLimits::default()) {
            Err(ExtractError::Malformed { kind, detail }) => {
                assert_eq!(kind, DocumentKind::Pdf);
                assert!(!detail.is_empty() && !detail.contains('\n'));
            }
            // Trailing damage that lopdf repairs is fine.
            Ok(text) => assert!(text.contains(LINES[0])),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    let junk = b"%PDF-1.4\n\x00\x01\x02 not really a pdf";
    assert!(matches!(
        extract(junk, "junk.pdf", None, &ExtractLimits::default()),
        Err(ExtractError::Malformed { .. })
    ));
}

/// A PDF whose only object is `object`, with a correct cross-reference
/// table, so lopdf parses it.
fn one_object_pdf(object: &[u8]) -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n1 0 obj\n".to_vec();
    bytes.extend(object);
    let xref = bytes.len() + b"\nendobj\n".len();
    bytes.extend(b"\nendobj\n");
    bytes.extend(b"xref\n0 2\n0000000000 65535 f \n0000000009 00000 n \n");
    bytes.extend(b"trailer\n<< /Size 2 /Root 1 0 R >>\n");
    bytes.extend(format!("startxref\n{xref}\n%%EOF\n").as_bytes());
    bytes
}

#[test]
fn deeply_nested_pdf_objects_do_not_overflow_the_stack() {
    for (open, close) in [(&b"["[..], &b"]"[..]), (b"<< /A ", b" >>")] {
        let mut object = open.repeat(100_000);
        object.extend(close.repeat(100_000));
        let got = extract(
            &one_object_pdf(&object),
            "nested.pdf",
            None,
            &ExtractLimits::default(),
        );
        // lopdf stops at its nesting limit: the object is dropped and the
        // document has no page.
        assert!(got.is_err(), "{got:?}");
    }
}

#[test]
fn a_panic_in_the_pdf_reader_is_malformed() {
    // pdf-extract panics on a font encoding it does not know.
    let mut doc = pdf_document(&LINES);
    for object in doc.objects.values_mut() {
        if let Object::Dictionary(dict) = object
            && dict.has(b"BaseFont")
        {
            dict.set("Encoding", Object::Name(b"NoSuchEncoding".to_vec()));
        }
    }
    let got = extract(&save(doc), "odd-font.pdf", None, &ExtractLimits::default());
    assert_eq!(
        got.map_err(|e| e.to_string()),
        Err("the PDF could not be read: its structure is not supported".to_owned())
    );
}

/// Bytes that start like a PDF and go on as anything: pieces of a real
/// PDF, PDF keywords and random bytes.
fn pdfish() -> impl Strategy<Value = Vec<u8>> {
    let real = save(pdf_document(&LINES));
    let piece = prop_oneof![
        (0..real.len(), 1usize..200)
            .prop_map(move |(at, n)| real[at..(at + n).min(real.len())].to_vec()),
        prop::sample::select(vec![
            &b" obj "[..],
            b"endobj",
            b"<<",
            b">>",
            b"[",
            b"]",
            b"/Type /Page",
            b"stream\n",
            b"endstream",
            b"xref\n0 1\n",
            b"trailer",
            b"startxref\n9\n",
            b"%%EOF",
            b"1 0 R",
            b"/Filter /FlateDecode",
            b"/Length 99999999",
        ])
        .prop_map(<[u8]>::to_vec),
        prop::collection::vec(any::<u8>(), 0..40),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| {
        let mut bytes = b"%PDF-".to_vec();
        bytes.extend(pieces.concat());
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn no_bytes_starting_like_a_pdf_panic(bytes in pdfish()) {
        let _ = extract(&bytes, "any.pdf", None, &ExtractLimits::default());
    }

    #[test]
    fn no_bytes_at_all_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), name in "[a-z]{0,5}(\\.(txt|md|html|pdf))?") {
        let _ = extract(&bytes, &name, None, &ExtractLimits::default());
    }
}
