;;; erudiff-tests.el --- ERT tests of erudiff.el against a real erudiffd  -*- lexical-binding: t; -*-

;;; Commentary:

;; Run by clients/python/tests/test_emacs.py (scripts/test-python -k emacs), which starts the daemon
;; and passes:
;;   ERUDIFF_SOCKET                 the daemon's socket (erudiff.el's default when `erudiff-socket' is nil)
;;   ERUDIFF_TEST_REFERENCE_PNG     the PNG the Python client got for "the flag of Japan", seed 3, 4 steps
;; By hand: emacs --batch -Q -L clients/emacs -l erudiff-tests -f ert-run-tests-batch-and-exit
;; (the test tagged on-demand expects no daemon on the socket: it starts one).

;;; Code:

(require 'ert)
(require 'erudiff)

(defun erudiff-tests--png-size (data)
  "(WIDTH HEIGHT) from the IHDR of the PNG bytes DATA, or nil if DATA is not a PNG."
  (when (and (stringp data) (>= (length data) 24)
             (string= (substring data 0 8) "\211PNG\r\n\032\n")
             (string= (substring data 12 16) "IHDR"))
    (cl-flet ((u32 (i) (+ (ash (aref data i) 24) (ash (aref data (+ i 1)) 16)
                          (ash (aref data (+ i 2)) 8) (aref data (+ i 3)))))
      (list (u32 16) (u32 20)))))

(defun erudiff-tests--images ()
  "The erudiff images in the current buffer: a list of (POS SPEC SAMPLE)."
  (let (out (pos (point-min)))
    (while (setq pos (text-property-not-all pos (point-max) 'erudiff-sample nil))
      (push (list pos (get-text-property pos 'display) (get-text-property pos 'erudiff-sample)) out)
      (setq pos (or (next-single-property-change pos 'erudiff-sample) (point-max))))
    (nreverse out)))

(defun erudiff-tests--model-size ()
  "(WIDTH HEIGHT) of the default model's images, from `status'."
  (let* ((models (append (plist-get (erudiff-call "status") :models) nil))
         (image (plist-get (car models) :image)))
    (list (plist-get image :width) (plist-get image :height))))

(defun erudiff-tests--read-file (file)
  (with-temp-buffer
    (set-buffer-multibyte nil)
    (let ((coding-system-for-read 'binary)) (insert-file-contents-literally file))
    (buffer-string)))

(defmacro erudiff-tests--with-messages (var &rest body)
  "Run BODY with every `message' text also pushed onto VAR (newest first)."
  (declare (indent 1))
  `(let ((record (lambda (fmt &rest args) (when fmt (push (apply #'format-message fmt args) ,var)))))
     (advice-add 'message :before record)
     (unwind-protect (progn ,@body) (advice-remove 'message record))))

(ert-deftest erudiff-region-sample-lands-in-the-buffer ()
  "The region's prompt is sampled; its PNG (the model's size, the same bytes the Python client got for
the same seed) is inserted as an image on the next line; the text around is untouched."
  (with-temp-buffer
    (insert "Some notes.\nthe flag of Japan\nMore notes.\n")
    (goto-char (point-min))
    (forward-line 1)
    (push-mark (line-end-position) t t)          ; the region: the whole second line
    (transient-mark-mode 1)
    (let* ((erudiff-sample-params '(:steps 4 :seed 3))
           (images (erudiff-sample-at-point)))
      (should (= (length images) 1))
      (should (equal (buffer-substring-no-properties (point-min) (point-max))
                     "Some notes.\nthe flag of Japan\n[erudiff: the flag of Japan, seed 3]\nMore notes.\n"))
      (pcase-let ((`((,pos ,spec ,sample)) (erudiff-tests--images)))
        (should (= (line-number-at-pos pos) 3))
        (should (eq (car spec) 'image))
        (should (eq (plist-get (cdr spec) :type) 'png))
        (should (equal (plist-get sample :prompt) "the flag of Japan"))
        (should (equal (plist-get sample :seed) 3))
        (let ((png (plist-get (cdr spec) :data)))
          (should (equal (erudiff-tests--png-size png) (erudiff-tests--model-size)))
          (should (equal png (erudiff-tests--read-file (getenv "ERUDIFF_TEST_REFERENCE_PNG"))))
          (let ((file (make-temp-file "erudiff-test" nil ".png")))
            (unwind-protect
                (progn (goto-char pos)
                       (erudiff-save-image file)
                       (should (equal (erudiff-tests--read-file file) png)))
              (delete-file file))))))))

(ert-deftest erudiff-line-prompt-and-progress-in-the-echo-area ()
  "Without a region the current line (trimmed) is the prompt; progress reports reach the echo area."
  (with-temp-buffer
    (insert "  a red circle on a white background  \nnext line")
    (goto-char (point-min))
    (let ((erudiff-sample-params '(:steps 8 :seed 5))
          messages)
      (erudiff-tests--with-messages messages
        (erudiff-sample-at-point))
      (let ((progress (cl-remove-if-not (lambda (m) (string-match-p "\\`erudiff: sample [0-9]+% " m)) messages)))
        (should (>= (length progress) 4))
        (should (cl-some (lambda (m) (string-match-p "C-g cancels" m)) progress)))
      (should (cl-some (lambda (m) (string-match-p "1 image(s) of \"a red circle on a white background\"" m))
                       messages))
      (pcase-let ((`((,pos ,_spec ,sample)) (erudiff-tests--images)))
        (should (= (line-number-at-pos pos) 2))
        (should (equal (plist-get sample :prompt) "a red circle on a white background"))))))

(ert-deftest erudiff-string-at-point-is-the-prompt ()
  "In code, point inside a string literal samples the string's contents."
  (with-temp-buffer
    (emacs-lisp-mode)
    (insert "(setq prompt \"a blue square on a yellow background\") ; sample me\n(done)")
    (goto-char (point-min))
    (search-forward "blue")
    (let ((erudiff-sample-params '(:steps 2 :seed 1)))
      (erudiff-sample-at-point))
    (pcase-let ((`((,pos ,_spec ,sample)) (erudiff-tests--images)))
      (should (= (line-number-at-pos pos) 2))
      (should (equal (plist-get sample :prompt) "a blue square on a yellow background")))))

(ert-deftest erudiff-quit-cancels-the-request ()
  "C-g while a long sample runs (a quit signalled once progress has come) sends $/cancelRequest: the
command quits, nothing is inserted, the daemon answers the request -32800 (Request cancelled) and its
job is gone."
  (with-temp-buffer
    (insert "the flag of Sweden")
    (let ((erudiff-sample-params '(:steps 1000 :count 4 :seed 2))
          (quitter nil)
          (outcome nil)
          (messages nil))
      (advice-add 'erudiff--progress-message :after
                  (lambda (_method value)
                    (when (and (not quitter) (equal (plist-get value :kind) "report"))
                      (setq quitter (run-at-time 0 nil (lambda () (signal 'quit nil))))))
                  '((name . erudiff-tests-quit)))
      (erudiff-tests--with-messages messages
        (unwind-protect
            (condition-case nil
                (progn (erudiff-sample-at-point) (setq outcome 'finished))
              (quit (setq outcome 'quit)))
          (advice-remove 'erudiff--progress-message 'erudiff-tests-quit))
        (should quitter)
        (should (eq outcome 'quit))
        (should (equal (buffer-string) "the flag of Sweden"))
        (let ((deadline (+ (float-time) 20)))
          (while (and (not (member "erudiff: the daemon stopped sample: Request cancelled" messages))
                      (< (float-time) deadline))
            (accept-process-output nil 0.05))))
      (should (member "erudiff: the daemon stopped sample: Request cancelled" messages))
      (should-not (append (plist-get (erudiff-call "status") :jobs) nil)))))

(ert-deftest erudiff-daemon-errors-signal-erudiff-error ()
  "An invalid parameter is the daemon's -32602, signalled as `erudiff-error'; the buffer is untouched."
  (with-temp-buffer
    (insert "the flag of Japan")
    (let* ((erudiff-sample-params '(:steps 0))
           (err (should-error (erudiff-sample-at-point) :type 'erudiff-error)))
      (should (equal (nth 2 err) -32602))
      (should (string-match-p "steps" (nth 1 err)))
      (should (equal (buffer-string) "the flag of Japan")))))

(ert-deftest erudiff-no-daemon-is-a-clear-error ()
  "Nothing at the socket and starting disabled: a user-error naming the socket."
  (let ((erudiff-socket (make-temp-name "/tmp/erudiff-test-no-daemon-"))
        (erudiff-start-daemon nil)
        (erudiff--connection nil))
    (let ((err (should-error (erudiff-connection) :type 'user-error)))
      (should (string-match-p (regexp-quote erudiff-socket) (cadr err))))))

(ert-deftest erudiff-no-autostart-in-the-environment-is-obeyed ()
  "ERUDIFF_NO_AUTOSTART=1 keeps the package from starting a daemon, as it does the other clients."
  (let ((erudiff-socket (make-temp-name "/tmp/erudiff-test-no-daemon-"))
        (erudiff-start-daemon t)
        (erudiff-program "/bin/false")     ; would fail loudly if it were run
        (erudiff--connection nil)
        (process-environment (cons "ERUDIFF_NO_AUTOSTART=1" process-environment)))
    (let ((err (should-error (erudiff-connection) :type 'user-error)))
      (should (string-match-p "ERUDIFF_NO_AUTOSTART" (cadr err))))))

(defun erudiff-tests--script (body)
  "An executable shell script of BODY, in a temporary file (its name)."
  (let ((file (make-temp-file "erudiff-test-program")))
    (with-temp-file file (insert "#!/bin/sh\n" body "\n"))
    (set-file-modes file #o700)
    file))

(ert-deftest erudiff-starts-a-daemon-through-the-shell-client ()
  "Nothing at the socket: the package runs `erudiff-program --socket PATH daemon start' and connects
to the socket it prints (here a stand-in program that prints the running daemon's)."
  (let* ((args-file (make-temp-file "erudiff-test-args"))
         (erudiff-program (erudiff-tests--script
                           (format "echo \"$@\" > %s\necho 'erudiff: started' >&2\necho %s"
                                   args-file (getenv "ERUDIFF_SOCKET"))))
         (erudiff-socket (make-temp-name "/tmp/erudiff-test-no-daemon-"))
         (erudiff-start-daemon t)
         (erudiff--connection nil)
         (process-environment (cons "ERUDIFF_NO_AUTOSTART=0" process-environment)))
    (unwind-protect
        (progn
          (should (plist-get (erudiff-status) :pid))
          (should (equal (erudiff-tests--read-file args-file)
                         (format "--socket %s daemon start\n" erudiff-socket))))
      (erudiff-disconnect)
      (delete-file erudiff-program)
      (delete-file args-file))))

(ert-deftest erudiff-a-failed-start-says-why ()
  "When the shell client cannot start a daemon, the error carries what it said on stderr."
  (let* ((erudiff-program (erudiff-tests--script "echo 'erudiffd was not found' >&2\nexit 3"))
         (erudiff-socket (make-temp-name "/tmp/erudiff-test-no-daemon-"))
         (erudiff-start-daemon t)
         (erudiff--connection nil))
    (unwind-protect
        (let ((err (should-error (erudiff-connection))))
          (should (string-match-p "erudiffd was not found" (cadr err))))
      (delete-file erudiff-program))))

(ert-deftest erudiff-finds-the-shell-client-beside-it ()
  "With no `erudiff-program' and no erudiff on `exec-path', the checkout's clients/erudiff is used."
  (let ((erudiff-program nil) (exec-path nil))
    (should (equal (erudiff--program)
                   (expand-file-name "../erudiff" (file-name-directory (locate-library "erudiff")))))))

(ert-deftest erudiff-jsonrpc-null-params-are-no-params ()
  "jsonrpc.el sends \"params\": null for a request without parameters (as
eglot's shutdown does); the daemon takes it as none."
  (should (plist-get (jsonrpc-request (erudiff-connection) :status nil) :pid))
  (should (vectorp (plist-get (jsonrpc-request (erudiff-connection) :models/list nil) :models))))

(ert-deftest erudiff-starts-the-daemon-on-demand ()
  "Nothing answers on the socket: the first sample starts a daemon through
`erudiff daemon start' (the checkout's shell client, found beside the
package), and its image lands in the buffer.  Run alone, with no daemon
(test_emacs.py), by the selector (tag on-demand)."
  :tags '(on-demand)
  (let ((erudiff-socket nil) (erudiff-program nil) (exec-path nil) (erudiff--connection nil)
        (messages nil))
    (should-not (file-exists-p (erudiff--default-socket)))
    (with-temp-buffer
      (insert "the flag of Japan")
      (let ((erudiff-sample-params '(:steps 4 :seed 3)))
        (erudiff-tests--with-messages messages
          (erudiff-sample-at-point)))
      (should (cl-some (lambda (m) (string-prefix-p "erudiff: starting the daemon" m)) messages))
      (pcase-let ((`((,_pos ,spec ,_sample)) (erudiff-tests--images)))
        (should (equal (plist-get (cdr spec) :data)
                       (erudiff-tests--read-file (getenv "ERUDIFF_TEST_REFERENCE_PNG"))))))
    (should (file-exists-p (erudiff--default-socket)))))

(ert-deftest erudiff-empty-prompt-is-refused ()
  "An empty line is no prompt: a user-error, no request."
  (with-temp-buffer
    (insert "   \n")
    (goto-char (point-min))
    (should-error (erudiff-sample-at-point) :type 'user-error)))

(provide 'erudiff-tests)
;;; erudiff-tests.el ends here
