"""Tests of the stop-word language identifier, on sentences written for these tests."""

from __future__ import annotations

import pytest

from chameleon_mix import langid

# Two sentences per language, one plain, one a conditional with a relative clause.
SENTENCES = {
    "en": [
        "The program reads the configuration file and shows the options that are available to each user.",
        "If you do not know which version to install, choose the one that is recommended by your distribution.",
    ],
    "fr": [
        "Le programme lit le fichier de configuration et affiche les options disponibles pour chaque utilisateur.",
        "Si vous ne savez pas quelle version installer, choisissez celle qui est recommandée par votre distribution.",
    ],
    "de": [
        "Das Programm liest die Konfigurationsdatei und zeigt die verfügbaren Optionen für jeden Benutzer an.",
        "Wenn Sie nicht wissen, welche Version Sie installieren sollen, wählen Sie die von Ihrer Distribution empfohlene.",
    ],
    "it": [
        "Il programma legge il file di configurazione e mostra le opzioni disponibili per ogni utente.",
        "Se non sai quale versione installare, scegli quella che è consigliata dalla tua distribuzione.",
    ],
    "es": [
        "El programa lee el archivo de configuración y muestra las opciones disponibles para cada usuario.",
        "Si no sabe qué versión instalar, elija la que recomienda su distribución en la página del proyecto.",
    ],
    "pt": [
        "O programa lê o arquivo de configuração e mostra as opções disponíveis para cada usuário.",
        "Se você não sabe qual versão instalar, escolha a que é recomendada pela sua distribuição.",
    ],
    "nl": [
        "Het programma leest het configuratiebestand en toont de beschikbare opties voor elke gebruiker.",
        "Als u niet weet welke versie u moet installeren, kies dan de versie die door uw distributie wordt aanbevolen.",
    ],
    "pl": [
        "Program czyta plik konfiguracyjny i wyświetla opcje dostępne dla każdego użytkownika.",
        "Jeśli nie wiesz, którą wersję zainstalować, wybierz tę, która jest zalecana przez twoją dystrybucję.",
    ],
}
CASES = [(language, text) for language, texts in SENTENCES.items() for text in texts]


def test_every_language_has_a_profile_and_sentences():
    assert set(langid.LANGUAGES) == set(SENTENCES) == set(langid.STOP_WORDS)
    assert {"fr", "de", "it", "es", "pt", "nl", "pl", "en"} == set(langid.LANGUAGES)


@pytest.mark.parametrize(("language", "text"), CASES)
def test_identify_finds_the_language_of_real_sentences(language, text):
    assert langid.identify(text) == language, langid.scores(text)
    assert langid.check(text, language) == "accepted"


@pytest.mark.parametrize(("language", "text"), CASES)
def test_a_sentence_is_rejected_for_every_other_language(language, text):
    for other in langid.LANGUAGES:
        if other != language:
            assert langid.check(text, other) == "rejected", (other, langid.scores(text))


def test_short_texts_are_not_judged():
    assert langid.check("Ouvrir le fichier", "fr") == "too_short"
    assert langid.identify("Ouvrir le fichier") is None
    assert langid.check("Ouvrir le fichier", "fr", min_words=3) == "accepted"


def test_code_and_option_lists_are_rejected():
    code = "for (i = 0; i < n; i++) { buffer[i] = read_byte(stream, offset + i); }"
    assert langid.identify(code) is None
    assert langid.check(code, "fr") == "rejected"


def test_words_skip_format_codes_and_split_elisions():
    assert langid.words("%s: l'option «%1$s» n'existe pas \\fBplus\\fR") == [
        "l",
        "option",
        "n",
        "existe",
        "pas",
    ]
    # Decomposed accents (NFD) count like composed ones.
    assert langid.words("e\u0301te\u0301") == ["été"]


def test_scores_are_shares_of_stop_words():
    shares = langid.scores("le chat et le chien")
    assert shares["fr"] == pytest.approx(3 / 5)  # le, et, le
    assert langid.scores("") == dict.fromkeys(langid.LANGUAGES, 0.0)


def test_unknown_language_is_an_error():
    with pytest.raises(ValueError, match="known: en, fr"):
        langid.check(SENTENCES["en"][0], "xx")
