// Package dashboardtest drives tide's dashboard in headless Chromium (Debian's chromium, through chromedp) for tests:
// open the page, wait for a service to be Ready and for its instance chart to rise, read any chart's data points
// from the DOM, collect console errors and exceptions, and save a screenshot as a test artifact.
//
// The dashboard's own browser test uses it with a scripted platform; the full-platform test uses it against a real
// `tide up` while the food-delivery demo runs. Chromium is looked up at TIDE_CHROMIUM, /usr/bin/chromium, then on
// PATH; when it is missing the test is skipped with a message, except when CI is set, where it fails.
package dashboardtest
