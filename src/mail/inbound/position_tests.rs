//! The position reader's unit tests: what replies must read as.

use super::*;

/// What a reply must read as: (position, ambiguous, conditional).
type Want = (Position, bool, bool);
const NO_OBJECTION: Want = (Position::NoObjection, false, false);
const OBJECTION: Want = (Position::Objection, false, false);
const COMMENTS: Want = (Position::Comments, false, false);
const CONDITIONAL: Want = (Position::Comments, false, true);
const DOUBT: Want = (Position::Comments, true, false);

fn got(text: &str) -> Want {
    let r = read(text, &[]);
    (r.position, r.ambiguous, r.conditional)
}

/// Checks a table; on failure names the text, what came out and the reason.
fn check(want: Want, texts: &[&str]) {
    for text in texts {
        let r = read(text, &[]);
        assert_eq!(
            (r.position, r.ambiguous, r.conditional),
            want,
            "{text:?} was read as {:?} ({})",
            (r.position, r.ambiguous, r.conditional),
            r.reason
        );
    }
}

#[test]
fn negated_or_impossible_support_is_an_objection() {
    check(
        OBJECTION,
        &[
            // en
            "We are not in a position to support the draft.",
            "The United States cannot support paragraph 4.",
            "We can't support this text.",
            "Unfortunately, we are unable to join the consensus.",
            "We do not agree with paragraph 4.",
            "Canada is not prepared to accept the annex.",
            "It is difficult for us to accept paragraph 2.",
            "We cannot go along with the new wording.",
            "Belize withdraws its support for the draft.",
            "We withhold our consent.",
            // es
            "No está en condiciones de acompañar el proyecto.",
            "Lamentablemente, Nicaragua no puede acompañar el consenso.",
            "Guatemala no puede apoyar el proyecto en su forma actual.",
            "Honduras no puede sumarse al consenso.",
            "No estamos de acuerdo con el párrafo 2.",
            "Nicaragua no está conforme con el párrafo 3.",
            "Honduras retira su apoyo al proyecto.",
            // fr
            "Le Canada n'est pas en mesure de se joindre au consensus.",
            "Le gouvernement du Canada ne peut pas appuyer le paragraphe 5.",
            "Nous ne sommes pas en mesure d'appuyer ce texte.",
            "Nous ne pouvons ni appuyer ni accepter ce texte.",
            "Le Canada n'appuie pas le projet.",
            "Nous ne sommes pas d'accord.",
            "No we object to paragraph 4.",
            "Le Canada désapprouve le paragraphe 3.",
        ],
    );
}

#[test]
fn objection_wording_is_an_objection() {
    check(
        OBJECTION,
        &[
            "We object to the new wording.",
            "Panama objects.",
            "The United States breaks silence.",
            "We disagree with paragraph 2.",
            "Paragraph 4 is unacceptable.",
            "Objetamos el párrafo 5.",
            "Guatemala rompe el silencio.",
            "El Salvador rechaza el texto.",
            "El párrafo 3 es inaceptable.",
            "Nous nous opposons au paragraphe 3.",
            "Le Canada rompt le silence.",
            "Nous rejetons le paragraphe 3.",
            // asking that the text not be adopted (now, or by this procedure)
            "We ask that the text not be adopted at this stage.",
            "Honduras pide que la declaración no se adopte por esta vía.",
            "Le Canada demande que le texte ne soit pas adopté par écrit.",
            "Mexico requests that the PPT postpone the adoption until the next meeting.",
            "Guatemala solicita aplazar la adopción hasta la próxima reunión.",
            "Le Canada souhaite reporter l'adoption à la réunion de juin.",
        ],
    );
}

#[test]
fn a_mention_of_adoption_is_not_consent() {
    check(
        DOUBT,
        &["The declaration adopted in Tegucigalpa in 2019 is cited in paragraph 1."],
    );
    check(
        (Position::Comments, false, false),
        &["The text adopted in 2019 already covers this; we propose deleting paragraph 2."],
    );
}

#[test]
fn negated_objection_and_consent_idioms_are_no_objection() {
    check(
        NO_OBJECTION,
        &[
            // en
            "We have no objection to the declaration.",
            "Mexico does not object to the draft.",
            "Panama doesn't object.",
            "We do not have any objections.",
            "The United States does not break silence.",
            "The United States will not stand in the way of consensus.",
            "We support the text.",
            "Costa Rica concurs.",
            "Agreed.",
            "Mexico joins the consensus.",
            "We can go along with the text.",
            "We support the text without reservation.",
            "Belize has no further comments.",
            "Canada would not object to the text.",
            "Nothing to add.",
            "Belize withdraws its objection and joins the consensus.",
            "Canada lifts its reservation.",
            "The Embassy of Belize presents its compliments to the Presidency Pro Tempore \
             and has the honour to inform that the Government of Belize has no objection.",
            // es
            "No tenemos objeciones.",
            "El Gobierno de Honduras no tiene objeción al texto.",
            "Sin objeción por parte de Guatemala.",
            "Nada que objetar.",
            "Honduras no tiene inconveniente.",
            "No vemos inconveniente alguno.",
            "Honduras no se opone a la adopción del texto.",
            "Apoyamos la declaración.",
            "Estamos de acuerdo.",
            "Aprobado por Panamá.",
            "Panamá se suma al consenso.",
            "Apoyamos el proyecto sin cambios.",
            "Apoyamos el texto sin reservas.",
            "Sin comentarios.",
            "No tenemos comentarios que agregar.",
            "Nada que agregar.",
            "La Embajada de Costa Rica tiene a bien informar que el Gobierno de Costa Rica \
             no formula observaciones al proyecto.",
            "De acuerdo con lo establecido en el procedimiento, Honduras no tiene objeción.",
            "Sí, estamos de acuerdo.",
            // fr
            "Nous n'avons pas d'objection.",
            "Le Canada n’a aucune objection.",
            "Aucune objection.",
            "Le Canada ne s'oppose pas à l'adoption du projet.",
            "Nous ne voyons pas d'objection.",
            "Rien à signaler.",
            "Rien à ajouter de notre part.",
            "Nous sommes d'accord avec le texte.",
            "Le Canada se joint au consensus.",
            "Le Canada appuie le projet sans réserve.",
            "Nous n'avons pas de commentaires à formuler.",
            "Le Canada lève sa réserve sur le paragraphe 3.",
            "Le Canada ne peut que se féliciter de ce texte et l'appuie.",
            "Le Canada ne s'y oppose pas.",
            "Il n'y a pas d'objection de la part du Canada.",
            "Nous ne nous y opposons pas.",
        ],
    );
}

#[test]
fn a_condition_makes_conditional_comments() {
    check(
        CONDITIONAL,
        &[
            // en
            "No objection, subject to the deletion of paragraph 3.",
            "NO OBJECTION, subject to confirmation from capital.",
            "We support the text provided that paragraph 3 is kept.",
            "Guatemala does not object, provided the Spanish version is aligned.",
            "We can join the consensus on condition that the annex is removed.",
            "No objection ad referendum.",
            "We support the text if paragraph 3 is deleted.",
            "We agree as long as the deadline is kept.",
            "Approved ad ref.",
            "Approved, pending legal review.",
            "Canada could support the text if paragraph 3 is deleted.",
            "Apoyaríamos el texto si se elimina el párrafo 3.",
            "Canada's support depends on the deletion of paragraph 3.",
            // es
            "Sin objeción, siempre que se mantenga el párrafo 4.",
            "SIN OBJECIÓN\n\nGuatemala acompaña siempre y cuando se incluya el párrafo 3.",
            "Honduras apoya el texto a condición de que se elimine el párrafo 2.",
            "Apoyamos, sujeto a la aprobación de la Cancillería.",
            "Apoyamos, si se elimina el párrafo 3.",
            "No tenemos objeción en el entendido de que el texto no es vinculante.",
            // fr
            "Pas d'objection, sous réserve de la suppression du paragraphe 2.",
            "Le Canada appuie le texte à condition que le paragraphe 3 soit supprimé.",
            "Nous n'avons pas d'objection, étant entendu que le texte n'est pas contraignant.",
            // French elides "que" before a vowel: "pourvu qu'il", "à moins qu'un".
            "Le Canada appuie le texte pourvu qu'il soit publié dans les trois langues.",
            "Nous appuyons le texte, à moins qu'un autre pays ne demande des changements.",
            "Le Canada se joint au consensus dans la mesure où il n'est pas contraignant.",
        ],
    );
}

#[test]
fn a_reservation_makes_conditional_comments() {
    check(
        CONDITIONAL,
        &[
            "Without prejudice to its national legislation, Canada joins the consensus.",
            "Canada dissociates itself from paragraph 7 but joins the consensus.",
            "Nicaragua reserves its position on paragraph 5.",
            "We join the consensus and will make an interpretive statement.",
            "Honduras has no objection to the text but not to paragraph 4.",
            "No objection, except for paragraph 6.",
            "El Salvador se reserva el derecho de presentar una declaración interpretativa.",
            "Sin perjuicio de su legislación nacional, México acompaña el consenso.",
            "Honduras tiene reservas sobre el párrafo 2.",
            "Apoyamos el texto, salvo el párrafo 3.",
            "Le Canada se joint au consensus sans préjudice de sa position nationale.",
            "Le Canada se dissocie du paragraphe 7.",
            "Nous appuyons le texte avec réserves.",
            "Apoyamos el texto, menos el párrafo 3.",
            "Le Canada appuie le texte hormis le paragraphe 3.",
            // an understanding put on record
            "Mexico joins the consensus and wishes to record its understanding that the text is not binding.",
            "Guatemala acompaña el consenso y desea dejar constancia de que el texto no es vinculante.",
            "Le Canada se joint au consensus et souhaite faire consigner son interprétation du paragraphe 2.",
            "Costa Rica acompaña el consenso; para que conste, el párrafo 2 se aplicará conforme a su ley.",
            "Honduras se suma al consenso. Dejamos nota de que el anexo no obliga a la Cancillería.",
            "Le Canada se joint au consensus. Pour mémoire, le paragraphe 2 relève des provinces.",
        ],
    );
}

#[test]
fn a_proposed_edit_is_comments_not_conditional() {
    check(
        COMMENTS,
        &[
            // en
            "Please replace 'shall' with 'should' in paragraph 2.",
            "We would prefer to delete paragraph 3.",
            "Please insert 'regular' before 'migration'.",
            "Add a reference to children in paragraph 4.",
            "We propose a new paragraph on data protection.",
            "No objection; we suggest adding a reference to children.",
            "COMMENTS\n\nParagraph 3: replace \"shall\" by \"should\".",
            // es
            "Sugerimos sustituir «migrantes» por «personas migrantes».",
            "Proponemos eliminar el párrafo 3.",
            "Proponemos la eliminación del párrafo 3.",
            "Please find our proposal below: delete paragraph 3.",
            "We would like the text to mention children.",
            "We would like to see a reference to children.",
            "Nos gustaría que se incluya a la niñez.",
            "Sin objeción. Sin embargo, sugerimos revisar la traducción.",
            "Comentarios: sugerimos cambiar el párrafo 2.",
            "Agradeceríamos que se incluya una referencia a la niñez.",
            "En el párrafo 2, donde dice «deberá», debe decir «podrá».",
            "Proposed wording for paragraph 5: \"States may consider\".",
            "Canada has no objection but would appreciate it if the annex were shorter.",
            // fr
            "Nous proposons de remplacer « doit » par « devrait ».",
            "Nous souhaiterions que le paragraphe 3 soit supprimé.",
            "Il conviendrait de préciser le paragraphe 3.",
            "Nous n'avons pas d'objection. Toutefois, il conviendrait d'ajouter une référence.",
        ],
    );
}

#[test]
fn what_the_reader_is_not_sure_of_is_ambiguous() {
    check(
        DOUBT,
        &[
            // questions
            "Could you please send the Spanish version of the annex?",
            "No objection. Is the deadline Friday?",
            "¿Podrían enviar la versión en inglés?",
            "Pourriez-vous nous envoyer la version anglaise ?",
            // acknowledgements and deferrals
            "Acuso recibo.",
            "Received, will revert.",
            "Bien reçu, merci.",
            "Noted, thanks.",
            "OK",
            "We will send our comments by Friday.",
            "No objection; comments to follow.",
            "Estamos consultando con la capital.",
            // hedges and concerns
            "We support the text in principle but need to consult with capital.",
            "We have concerns about paragraph 3.",
            "Honduras se abstiene.",
            "Apoyamos en principio.",
            "Nous appuyons le texte, mais nous avons des doutes sur le paragraphe 3.",
            "Paragraph 3 is problematic for us. We support the rest.",
            "Sin objeción de fondo.",
            "Canada could support the text.",
            "Overall, we support the text.",
            "Please confirm whether the annex is included.",
            "Our comments will be sent separately.",
            "Awaiting instructions from capital.",
            // the answer itself is on its way
            "Thank you for the reminder. Our reply is in clearance and will reach you shortly.",
            "Nuestra respuesta favorable está en trámite de aprobación.",
            "Notre appui est en cours de validation et vous sera transmis prochainement.",
            "Pending instructions from capital.",
            "Enterado.",
            "We do not think we have any objections.",
            "Please accept the assurances of our highest consideration.",
            "We need more time. Please accept our apologies for the delay.",
            // mixed signals
            "We support the text. However, paragraph 4 is not acceptable to us.",
            "We have no objections to paragraphs 1-3, but cannot accept paragraph 4.",
            "NO OBJECTION.\nWe cannot support any further delay, please adopt it.",
            // what the reply cannot do, without an objection
            "We are not in a position to object.",
            "No estamos en condiciones de responder en el plazo.",
            "Le Canada n'est pas en mesure de répondre.",
            // nothing
            "",
            "See you in Tegucigalpa.",
            "Yes",
            "Gracias por su apoyo. Quedamos atentos.",
        ],
    );
}

#[test]
fn the_first_line_keyword_decides_unless_the_text_qualifies_it() {
    check(
        OBJECTION,
        &[
            "OBJECTION\n\nWe have no objection to paragraphs 1 to 3, but not to 4.",
            "Estimados colegas:\nOBJECIÓN: el párrafo 3 no es aceptable.",
            "OBJECTION\nunless paragraph 4 is deleted.",
        ],
    );
    check(
        NO_OBJECTION,
        &[
            "Sin objecion",
            "PAS D’OBJECTION",
            "Non-objection.",
            "SIN OBJECIÓN\nHonduras agradece a la PPT.",
        ],
    );
    check(
        COMMENTS,
        &[
            "Commentaires :\nNous n'avons pas d'objection au fond.",
            "Comentarios: sugerimos cambiar el párrafo 2.",
        ],
    );
    // The sender chose COMMENTS, but wrote an objection: the PPT must look.
    assert_eq!(
        got("COMMENTS\nWe cannot support paragraph 4."),
        (Position::Comments, true, false)
    );
    assert_eq!(
        got("COMENTARIOS\nApoyamos siempre que se mantenga el párrafo 3."),
        CONDITIONAL
    );
}

#[test]
fn the_keyword_is_taken_out_of_a_quote() {
    assert_eq!(
        without_keyword("SIN OBJECIÓN\nHonduras agradece a la PPT."),
        "Honduras agradece a la PPT."
    );
    assert_eq!(
        without_keyword("Estimados:\n\nCOMMENTAIRES : voir ci-dessous.\nMerci"),
        "Estimados:\n\nvoir ci-dessous.\nMerci"
    );
    assert_eq!(without_keyword("NO OBJECTION."), "");
    assert_eq!(
        without_keyword("Objection withdrawn; we now support it."),
        "Objection withdrawn; we now support it."
    );
    assert_eq!(
        without_keyword("No tenemos objeciones."),
        "No tenemos objeciones."
    );
}

#[test]
fn a_lowercase_sentence_is_not_a_keyword() {
    assert_eq!(
        first_line_keyword("Objection withdrawn; we now support it."),
        None
    );
    assert_eq!(
        first_line_keyword("Comments from the PPT were taken into account."),
        None
    );
    assert!(first_line_keyword("COMMENTS below").is_some());
}

#[test]
fn formulas_that_name_consent_words_say_nothing() {
    // Thanks for someone's support are not support of the text.
    check(
        DOUBT,
        &[
            "Thank you for your support.",
            "Gracias por su apoyo.",
            "Merci pour votre appui.",
        ],
    );
    // "de acuerdo con lo ..." is "according to", not "we agree".
    check(
        OBJECTION,
        &["De acuerdo con las instrucciones recibidas, Nicaragua no puede acompañar el texto."],
    );
    // Courtesy around a plain answer leaves it plain; so does naming the text
    // ("the proposal") or its topic ("climate change", "la eliminación de …").
    check(
        NO_OBJECTION,
        &[
            "We support the proposal.",
            "We agree with the changes.",
            "We support the text, including the reference to climate change.",
            "Apoyamos la propuesta de la PPT.",
            "Honduras apoya el proyecto de declaración sobre la eliminación de la discriminación.",
            "Nous appuyons la proposition.",
            "We would like to join the consensus.",
            "Quisiéramos informarle que Honduras no tiene objeciones.",
            "Nous souhaiterions vous informer que le Canada appuie le texte.",
            "We would like to thank the PPT for its work and confirm that we have no objection.",
            "No objection. Please do not hesitate to contact me if you have any questions.",
            "No objection. Thank you for the opportunity to comment.",
            "We support the text and will be happy to discuss it further if needed.",
            "Sin otro particular, Guatemala no tiene objeciones.",
            "Honduras apoya el proyecto. Quedo a sus órdenes para cualquier duda.",
            "Nota No. 45: Honduras apoya el proyecto.",
        ],
    );
    // Comments that were taken into account are not new comments.
    check(
        NO_OBJECTION,
        &[
            "We thank the PPT for incorporating our comments and join the consensus.",
            "Agradecemos a la PPT por haber incorporado nuestros comentarios; apoyamos el texto.",
            "Le Canada remercie la PPT d'avoir pris en compte ses commentaires et appuie le texte.",
            "Canada is now able to join consensus, as our concerns have been addressed.",
            "Thank you for sharing the revised text, which addresses our comments. We support it.",
        ],
    );
}

#[test]
fn a_wrapped_line_does_not_break_a_negation() {
    assert_eq!(
        got("Le gouvernement du Canada ne peut pas\nappuyer le paragraphe 5."),
        OBJECTION
    );
    assert_eq!(got("Honduras no tiene\nobjeciones."), NO_OBJECTION);
    // A blank line ends the sentence: "if" below does not qualify the consent.
    assert_eq!(
        got("We support the text.\n\nIf you need anything, write to us"),
        NO_OBJECTION
    );
}

#[test]
fn a_question_mark_in_a_link_or_a_number_is_no_question() {
    assert_eq!(
        got("We support the text (see https://example.org/page?id=3)."),
        NO_OBJECTION
    );
    assert_eq!(got("We support version 3.2 of the text."), NO_OBJECTION);
}

#[test]
fn accented_si_is_yes_and_plain_si_is_if() {
    assert_eq!(got("Honduras sí apoya el texto."), NO_OBJECTION);
    assert_eq!(
        got("Honduras apoya el texto si se elimina el párrafo 3."),
        CONDITIONAL
    );
}

#[test]
fn a_document_is_comments_unless_an_objection_and_a_pdf_decides_nothing() {
    let doc = |name: &str, content_type: &str| Attachment {
        name: Some(name.into()),
        content_type: content_type.into(),
        size: 1,
        sha256: String::new(),
    };
    let docx = doc("edits.docx", "application/octet-stream");
    let r = read(
        "Please find our proposals attached.",
        std::slice::from_ref(&docx),
    );
    assert_eq!((r.position, r.ambiguous), (Position::Comments, false));
    let r = read("Adjunto nota.", std::slice::from_ref(&docx));
    assert_eq!((r.position, r.ambiguous), (Position::Comments, false));
    assert!(r.reason.contains("edits.docx"), "{}", r.reason);
    let r = read(
        "We cannot support the text; see attached.",
        std::slice::from_ref(&docx),
    );
    assert_eq!(r.position, Position::Objection);

    // A signed note verbale as a PDF: the text decides; alone, it is a doubt.
    let pdf = doc("nota-verbal.pdf", "application/pdf");
    let r = read("No objection.", std::slice::from_ref(&pdf));
    assert_eq!((r.position, r.ambiguous), (Position::NoObjection, false));
    let r = read("Please find attached our note.", std::slice::from_ref(&pdf));
    assert_eq!((r.position, r.ambiguous), (Position::Comments, true));
    assert!(r.reason.contains("nota-verbal.pdf"), "{}", r.reason);
}

#[test]
fn the_reason_quotes_the_deciding_words_as_written() {
    let reason = |t: &str| read(t, &[]).reason;
    assert_eq!(
        reason("Mexico doesn't object to the draft."),
        "the reply consents (\"doesn't object\")"
    );
    assert_eq!(
        reason("Lamentablemente, Nicaragua no puede acompañar el consenso."),
        "the reply objects (\"no puede acompañar\")"
    );
    assert_eq!(
        reason("NO OBJECTION, subject to confirmation."),
        "the first line says \"NO OBJECTION\", but the reply sets a condition \
         (\"subject to\"): conditional comments, not a plain no objection"
    );
    assert_eq!(
        reason("Nous proposons de remplacer « doit » par « devrait »."),
        "the reply proposes edits (\"proposons\")"
    );
    assert!(reason("Could you send the annex? Thanks").contains("\"Could you send the annex?\""));
    assert!(reason("Sin objeción. ¿Cuál es el plazo?").contains("\"¿Cuál es el plazo?\""));
}

#[test]
fn conditional_is_only_ever_set_on_comments() {
    for text in [
        "OBJECTION unless paragraph 4 is deleted.",
        "We cannot support the text unless paragraph 4 is deleted.",
    ] {
        let r = read(text, &[]);
        assert_eq!(r.position, Position::Objection, "{text}");
        assert!(!r.conditional, "{text}");
    }
}
