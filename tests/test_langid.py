"""Tests of the language identifier, on sentences written for these tests."""

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


def test_every_language_has_sentences():
    assert set(langid.LANGUAGES) == set(SENTENCES)
    assert {"fr", "de", "it", "es", "pt", "nl", "pl", "en"} == set(langid.LANGUAGES)


@pytest.mark.parametrize(("language", "text"), CASES)
def test_identify_finds_the_language_of_real_sentences(language, text):
    assert langid.identify(text) == language
    assert langid.check(text, language) == "accepted"


@pytest.mark.parametrize(("language", "text"), CASES)
def test_a_sentence_is_rejected_for_every_other_language(language, text):
    for other in langid.LANGUAGES:
        if other != language:
            assert langid.check(text, other) == "rejected", other


def test_short_messages_the_stop_words_got_wrong():
    # Real messages of the demo's catalogues that the former stop-word check misjudged:
    # Polish has few function words, and a German message may share them all with English.
    assert langid.check("zmiana wielkości litery stworzyła nieprawidłowy znak", "pl") == "accepted"
    assert (
        langid.check(
            "Uaktualnienie czasu ostatniego odczytu albo modyfikacji każdego PLIKU do bieżącego czasu.",
            "pl",
        )
        == "accepted"
    )
    assert (
        langid.check(
            "Le lien symbolique a été utilisé parce que le lien physique a échoué: %s", "fr"
        )
        == "accepted"
    )


def test_short_texts_are_not_judged():
    assert langid.check("Ouvrir le fichier", "fr") == "too_short"
    assert langid.identify("Ouvrir le fichier") is None
    assert langid.check("Ouvrir le fichier", "fr", min_words=3) == "accepted"


def test_code_is_rejected():
    code = "for (i = 0; i < n; i++) { buffer[i] = read_byte(stream, offset + i); }"
    for language in langid.LANGUAGES:
        if language != "en":
            assert langid.check(code, language) == "rejected"
    assert langid.identify("%d / %s = %u") is None  # too few words to judge


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


def test_unknown_language_is_an_error():
    with pytest.raises(ValueError, match="known: en, fr"):
        langid.check(SENTENCES["en"][0], "xx")
